"""The application's screens: four places (runs, registry, endpoints, endpoint test) and their dialogs."""
