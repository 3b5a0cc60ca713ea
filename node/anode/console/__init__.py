"""The web console on the admin port (`/console/`): see `app`."""
