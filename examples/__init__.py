"""Classes of a user's own, as a user of this project writes them: nothing here imports the
project (README: Your own data and model)."""
