"""Steps: the work the @task modules share; a task module never imports another."""
