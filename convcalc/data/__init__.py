"""The packaged course exercises (examples.yaml) and example models (models/*.yaml)."""
