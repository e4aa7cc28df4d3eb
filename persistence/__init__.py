"""What the API and the workers share: settings, the database, the object store."""
