"""Read models: folds of the domain events into tables, and the queries the API calls."""
