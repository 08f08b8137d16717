"""Business calendars: one reviewed file per year (calendars/<year>.json), loaded, checked and shown."""
