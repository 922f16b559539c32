"""What the console answers instead of a page: a redirect to sign in, or a refusal page.
Raised anywhere in a console handler or dependency; `mount` turns them into responses."""

from __future__ import annotations

from urllib.parse import quote

LOGIN = "/console/login"


class SignInRequiredError(Exception):
    """Answered with a redirect to the sign-in page (then back to `next`)."""

    def __init__(self, next_path: str, *, expired: bool) -> None:
        super().__init__("sign in first")
        self.next_path, self.expired = next_path, expired

    @property
    def location(self) -> str:
        query = f"next={quote(self.next_path, safe='/')}"
        return f"{LOGIN}?{query}&expired=1" if self.expired else f"{LOGIN}?{query}"


class ConsoleRefusalError(Exception):
    """Answered with the refusal page: `title` and `message` for the person, nothing done."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message
