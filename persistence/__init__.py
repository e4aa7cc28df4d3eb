"""What the API and the workers share: settings, the database (tables, the one lease engine), the object
store, and the contract of wake-up messages."""
