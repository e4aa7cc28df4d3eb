"""Training jobs: the supervising task, the child process that trains, what they tell each other, clean-up."""
