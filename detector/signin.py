"""Sign-in throttling: failed attempts are counted per account and per address, and past
a limit the sign-in is refused for a while, even with the right password.

Every way to sign in goes through Django's authentication (the sign-in page, the admin's),
so the check sits there twice: `ThrottledModelBackend` refuses a locked account or address
whatever the form, and `ThrottledAuthenticationForm` says why on the page (429). Failures are
rows in the database, so the count holds across web processes and machines.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core.exceptions import PermissionDenied, ValidationError
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from detector.models import SignInFailure


def client_address(request: HttpRequest | None) -> str:
    """The address the request came from (the proxy's view of it when behind one)."""
    if request is None:
        return ""
    if settings.DEEPFAKE_BEHIND_PROXY and (forwarded := request.META.get("HTTP_X_FORWARDED_FOR")):
        return forwarded.split(",")[-1].strip()[:45]  # the address our own proxy saw
    return (request.META.get("REMOTE_ADDR") or "")[:45]


def locked_for(username: str, address: str) -> int:
    """Seconds until this account and address may try again; 0 when they may now."""
    window = timedelta(seconds=settings.DEEPFAKE_SIGNIN_WINDOW_S)
    since = timezone.now() - window
    recent = SignInFailure.objects.filter(created_at__gte=since)
    waits = []
    for rows, limit in (
        (recent.filter(username=username.lower()), settings.DEEPFAKE_SIGNIN_FAILURES_PER_ACCOUNT),
        (recent.filter(address=address), settings.DEEPFAKE_SIGNIN_FAILURES_PER_ADDRESS),
    ):
        times = list(rows.order_by("-created_at").values_list("created_at", flat=True)[:limit])
        if len(times) >= limit:  # the limit-th newest failure must age out of the window
            waits.append(int((times[-1] + window - timezone.now()).total_seconds()) + 1)
    return max(waits, default=0)


def lock_message(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


@receiver(user_login_failed)
def count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kwargs) -> None:
    SignInFailure.objects.create(
        username=str(credentials.get("username", ""))[:150].lower(), address=client_address(request)
    )


@receiver(user_logged_in)
def forget_failures(sender, request: HttpRequest | None, user, **kwargs) -> None:
    SignInFailure.objects.filter(username=user.get_username().lower()).delete()


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None, password=None, **kwargs):
        if username is not None and locked_for(username, client_address(request)):
            raise PermissionDenied(lock_message(locked_for(username, client_address(request))))
        return super().authenticate(request, username=username, password=password, **kwargs)


class _Throttled:
    """Says on the form why a locked sign-in is refused (before the password is checked)."""

    locked = False

    def clean(self):
        username = self.data.get("username", "")
        if wait := locked_for(username, client_address(self.request)):
            self.locked = True
            raise ValidationError(lock_message(wait), code="throttled")
        return super().clean()


class ThrottledAuthenticationForm(_Throttled, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(_Throttled, AdminAuthenticationForm):
    pass


class LoginView(auth_views.LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form) -> HttpResponse:
        response = super().form_invalid(form)
        if form.locked:
            response.status_code = 429
        return response
