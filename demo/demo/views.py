"""The demo's pages: home, "pick a username" login, and the 0.3-style examples.

``echo`` and ``lower_case`` are function views with the django-websocket 0.3 API
(``@require_websocket``, ``@accept_websocket``, ``request.websocket``); the chat
(``chat/views.py``) uses the class-based ``WebSocketView``.
"""

from django import forms
from django.contrib.auth import get_user_model, login
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from django_websocket import accept_websocket, require_websocket

from chat.models import Message


def index(request):
    """The home page: the rooms with recent messages, and a form to open any room."""
    rooms = Message.objects.recent_rooms()
    if "lobby" not in rooms:
        rooms.insert(0, "lobby")
    return render(request, "index.html", {"rooms": rooms})


class UsernameForm(forms.Form):
    username = forms.CharField(
        max_length=30,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "nickname"}),
    )

    def clean_username(self):
        """Refuse the name of a real account (one with a password, e.g. a superuser)."""
        name = self.cleaned_data["username"]
        user = get_user_model().objects.filter(username__iexact=name).first()
        if user is not None and user.has_usable_password():
            raise forms.ValidationError("That name belongs to a real account: pick another.")
        return user.get_username() if user is not None else name


@require_http_methods(["GET", "POST"])
def pick_username(request):
    """Log in as a demo user with just a name, creating the user on first use.

    Demo users have no password, so anyone may take any demo name: fine for a demo,
    never for a real site.
    """
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = ""
    form = UsernameForm(request.POST or None)
    if form.is_valid():
        user, created = get_user_model().objects.get_or_create(
            username=form.cleaned_data["username"]
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        login(request, user)
        return redirect(next_url or "index")
    return render(request, "login.html", {"form": form, "next": next_url})


def echo_page(request):
    """The page with a client for each of the two examples below."""
    return render(request, "echo.html")


@require_websocket
def echo(request):
    for message in request.websocket:
        request.websocket.send(message)


def modify_message(message):
    return message.lower()


# The example from django-websocket 0.3's README, as written there.
@accept_websocket
def lower_case(request):
    if not request.is_websocket():
        message = request.GET["message"]
        message = modify_message(message)
        return HttpResponse(message)
    else:
        for message in request.websocket:
            message = modify_message(message)
            request.websocket.send(message)
