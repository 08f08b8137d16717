"""Product declarations (products/<code>.json): loading and checking them; the registry is app.domain.products."""
