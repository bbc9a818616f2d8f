"""Past one machine ([cluster]): Celery tasks on a Redis broker, one per page group.

Nothing here is imported unless [cluster] is configured and `monitor run` or
`monitor worker` needs it: celery, redis and psycopg are the `cluster` extra.
`settings` alone imports none of them.
"""
