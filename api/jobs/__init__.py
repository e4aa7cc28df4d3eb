"""Training jobs over HTTP: submit, follow (poll or stream events), list, cancel."""
