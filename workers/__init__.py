"""Background work: the Huey instance, its tasks, and the consumer that runs them."""
