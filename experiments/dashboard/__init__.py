"""The dashboard as a user sees it: a real TensorBoard server and a headless browser (for the
README's screenshots, experiments/screenshots.py, and the dashboard tests)."""
