"""Helpers the tests share (a throwaway SLURM cluster)."""
