"""Demo shop generator."""
