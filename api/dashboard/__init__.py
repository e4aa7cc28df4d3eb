"""The web dashboard: server-rendered pages for people, served by the API itself (docs/ARCHITECTURE.md §12).

Pages call the JSON API's own route functions with the signed-in tenant, and their scripts call the
JSON API with the session cookie, so every rule (tenancy, validation, limits) is the API's.
"""
