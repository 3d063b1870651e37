"""Reports built from a run's data: tables, paired statistics, figures and an HTML page."""
