"""The one kind of exception a user can cause, and how it ends a run.

UserError subclasses invoke's Exit: when a task raises it, `inv` prints the
message as one line on stderr and exits 1, with no traceback. Anything else
is a bug and keeps its traceback.
"""

from invoke.exceptions import Exit


class UserError(Exit):
    """A problem the user can fix. The message is the whole report: one line
    that names the setting or resource and what to do."""

    def __init__(self, message, code=1):
        super().__init__(f"error: {message}", code)
        self.reason = message

    def __str__(self):
        return self.reason


class ConfigError(UserError):
    """A setting is missing or malformed."""


class CloudError(UserError):
    """The cloud refused a request that retrying cannot fix."""
