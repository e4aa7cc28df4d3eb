"""HTTP plumbing every resource uses: auth, problems, pagination, idempotency, SSE, caching, body caps."""
