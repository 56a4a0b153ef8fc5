"""Entry points (run.py, evaluate.py) and the small library they share."""
