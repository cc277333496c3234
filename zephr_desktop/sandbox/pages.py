"""The sandbox's HTML pages: self-contained (inline CSS, JS and logo), light and dark."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from .model import SCOPES

TITLE = "Zephr Sandbox"
POPUP_PATH = "/zephr/popup-id"
BACKGROUND = "#eef1f6"
IDENTIFIER_PLACEHOLDER = "you@example.com"

LOGO_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48" width="48" height="48" '
    'role="img" aria-label="Zephr Sandbox">'
    '<rect width="48" height="48" rx="12" fill="#4f46e5"/>'
    '<path d="M14 15h20l-14 18h14" fill="none" stroke="#fff" stroke-width="4" '
    'stroke-linecap="round" stroke-linejoin="round"/></svg>'
)

_CSS = """
:root { color-scheme: light dark; --bg: %(background)s; --card: #ffffff; --text: #1b1f2a;
  --muted: #5b6475; --border: #d9dee8; --accent: #4f46e5; --accent-text: #ffffff;
  --danger: #b42318; --danger-bg: #fdecea; --field: #ffffff; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #10131a; --card: #1a1f2b; --text: #e8ebf2; --muted: #a2abbd;
    --border: #2e3546; --accent: #8b84ff; --accent-text: #0d0f16; --danger: #ff8a80;
    --danger-bg: #3a1f1f; --field: #121620; }
}
* { box-sizing: border-box; }
body { margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { width: min(440px, calc(100vw - 32px)); margin: 32px 0; background: var(--card);
  border: 1px solid var(--border); border-radius: 16px; padding: 32px;
  box-shadow: 0 10px 30px rgba(15, 23, 42, .08); }
header { display: flex; align-items: center; gap: 12px; margin-bottom: 20px; }
header .site { font-weight: 600; }
header .badge { margin-left: auto; font-size: 12px; color: var(--muted); border: 1px solid var(--border);
  border-radius: 999px; padding: 2px 10px; }
h1 { font-size: 22px; margin: 0 0 8px; }
p { margin: 0 0 16px; color: var(--muted); }
label { display: block; font-weight: 600; margin: 14px 0 6px; }
input { width: 100%%; padding: 10px 12px; border-radius: 10px; border: 1px solid var(--border);
  background: var(--field); color: var(--text); font: inherit; }
input:focus, button:focus-visible { outline: 3px solid color-mix(in srgb, var(--accent) 45%%, transparent);
  outline-offset: 1px; }
button { font: inherit; font-weight: 600; border-radius: 10px; padding: 10px 16px; cursor: pointer;
  border: 1px solid var(--border); background: transparent; color: var(--text); }
button.primary { background: var(--accent); border-color: var(--accent); color: var(--accent-text); }
button:disabled { opacity: .6; cursor: progress; }
.actions { display: flex; gap: 12px; margin-top: 24px; }
.actions button { flex: 1; }
.error { background: var(--danger-bg); color: var(--danger); border-radius: 10px; padding: 10px 12px;
  margin: 0 0 16px; }
ul.scopes { list-style: none; padding: 0; margin: 0 0 16px; border: 1px solid var(--border);
  border-radius: 12px; }
ul.scopes li { padding: 12px 14px; border-top: 1px solid var(--border); }
ul.scopes li:first-child { border-top: 0; }
ul.scopes code, .users code { font-size: 12px; color: var(--muted); }
.who { font-size: 14px; color: var(--muted); margin: 0 0 16px; }
form.inline { display: inline; }
.who button { white-space: nowrap; margin-left: 4px; }
.users { margin-top: 24px; border-top: 1px solid var(--border); padding-top: 16px; font-size: 14px; }
.users button { padding: 4px 10px; font-size: 13px; margin-left: 8px; }
.users li { margin: 6px 0; }
.users ul { padding-left: 18px; margin: 8px 0 0; }
.link { border: 0; padding: 0; color: var(--accent); font-weight: 500; text-decoration: underline;
  cursor: pointer; background: none; }
#status { min-height: 1.5em; margin: 12px 0 0; }
"""


def _script_json(value: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> element."""
    text = json.dumps(value)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def layout(title: str, body: str, nonce: str, background: str = BACKGROUND, script: str = "") -> str:
    """A complete page around body; scripts carry the response's CSP nonce."""
    css = _CSS % {"background": escape(background)}
    tail = f'<script nonce="{escape(nonce)}">{script}</script>' if script else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        f"<title>{escape(title)} · {TITLE}</title><style>{css}</style></head><body><main>"
        f'<header>{LOGO_SVG}<span class="site">{TITLE}</span><span class="badge">sandbox</span></header>'
        f"{body}</main>{tail}</body></html>"
    )


_LOGIN_SCRIPT = """
document.querySelectorAll('[data-email]').forEach(function (b) {
  b.addEventListener('click', function () {
    document.getElementById('email').value = b.dataset.email;
    document.getElementById('password').value = b.dataset.password;
    document.getElementById('password').focus();
  });
});
"""

# Social sign-in as many sites do it: a popup signs the person in, tells its opener and closes;
# the opener then carries on. The session cookie the popup gets is the opener's too.
_POPUP_OPENER_SCRIPT = """
(function () {
  var button = document.getElementById('popup-sign-in');
  var status = document.getElementById('popup-status');
  button.addEventListener('click', function () {
    var popup = window.open('%(popup_path)s', 'zephr-popup-id', 'popup,width=460,height=600');
    status.textContent = popup ? 'Continue in the Popup ID window\u2026'
      : 'The sign-in popup was blocked. Allow popups for this site, or sign in with your password.';
  });
  window.addEventListener('message', function (event) {
    if (event.origin !== window.location.origin || !event.data || event.data.type !== 'zephr-popup-signed-in') {
      return;
    }
    var next = document.querySelector('input[name=next]').value;
    if (next) { window.location.assign(next); } else { window.location.reload(); }
  });
})();
"""

_POPUP_DONE_SCRIPT = """
if (window.opener) {
  window.opener.postMessage({ type: 'zephr-popup-signed-in' }, window.location.origin);
  window.close();
} else {
  document.getElementById('status').textContent = 'Signed in. Return to the window you came from.';
}
"""


def login_page(
    next_url: str, users: Mapping[str, Mapping[str, str]], nonce: str, error: str = "", email: str = ""
) -> str:
    """The sign-in form, listing the seeded test users (it is a sandbox)."""
    alert = f'<div class="error" role="alert" id="error">{escape(error)}</div>' if error else ""
    rows = "".join(
        f"<li><code>{escape(address)}</code> / <code>{escape(u['password'])}</code>"
        f" ({escape(u['first_name'])} {escape(u['surname'])})"
        f'<button type="button" data-email="{escape(address)}" data-password="{escape(u["password"])}">'
        "Use</button></li>"
        for address, u in users.items()
    )
    body = (
        "<h1>Sign in</h1><p>Sign in to continue to the app that sent you here.</p>"
        f'{alert}<form method="post" action="/zephr/login" autocomplete="on">'
        f'<input type="hidden" name="next" value="{escape(next_url)}">'
        '<label for="email">Email address</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" required '
        f'placeholder="{escape(IDENTIFIER_PLACEHOLDER)}" value="{escape(email)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<div class="actions"><button id="sign-in" class="primary" type="submit">Sign in</button></div>'
        "</form>"
        '<div class="actions"><button id="popup-sign-in" type="button">Sign in with Popup ID</button></div>'
        '<p id="popup-status" role="status" aria-live="polite"></p>'
        f'<div class="users"><strong>Test users</strong><ul>{rows}</ul></div>'
    )
    script = _LOGIN_SCRIPT + _POPUP_OPENER_SCRIPT % {"popup_path": POPUP_PATH}
    return layout("Sign in", body, nonce, script=script)


def popup_login_page(users: Mapping[str, Mapping[str, str]], nonce: str, error: str = "", email: str = "") -> str:
    """The Popup ID sign-in, shown in the popup the login page opens."""
    alert = f'<div class="error" role="alert" id="error">{escape(error)}</div>' if error else ""
    rows = "".join(
        f"<li><code>{escape(address)}</code>"
        f'<button type="button" data-email="{escape(address)}" data-password="{escape(u["password"])}">'
        "Use</button></li>"
        for address, u in users.items()
    )
    body = (
        "<h1>Popup ID</h1><p>Sign in with your Popup ID to continue on the Zephr sandbox.</p>"
        f'{alert}<form method="post" action="{POPUP_PATH}">'
        '<label for="email">Email address</label>'
        f'<input id="email" name="email" type="email" autocomplete="username" required value="{escape(email)}">'
        '<label for="password">Password</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password" required>'
        '<div class="actions"><button id="continue" class="primary" type="submit">Continue</button></div>'
        f'</form><div class="users"><strong>Test users</strong><ul>{rows}</ul></div>'
    )
    return layout("Popup ID", body, nonce, script=_LOGIN_SCRIPT)


def popup_done_page(user_label: str, nonce: str) -> str:
    """After a Popup ID sign-in: tells the opener and closes itself."""
    body = (
        f'<h1>Signed in</h1><p>Signed in as <strong>{escape(user_label)}</strong>.</p><p id="status" role="status"></p>'
    )
    return layout("Signed in", body, nonce, script=_POPUP_DONE_SCRIPT)


_CONSENT_SCRIPT = """
(function () {
  var req = JSON.parse(document.getElementById('grant-request').textContent);
  var status = document.getElementById('status');
  var buttons = [document.getElementById('allow'), document.getElementById('deny')];
  function go(params) {
    var url = new URL(req.redirect_uri);
    Object.keys(params).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null) { url.searchParams.set(k, params[k]); }
    });
    window.location.assign(url.toString());
  }
  function fail(message) {
    status.className = 'error';
    status.textContent = message;
    buttons.forEach(function (b) { b.disabled = false; });
  }
  function decide(allow) {
    buttons.forEach(function (b) { b.disabled = true; });
    status.className = '';
    status.textContent = allow ? 'Allowing\\u2026' : 'Denying\\u2026';
    var body = Object.assign({}, req, { allow: allow });
    fetch('/zephr/oauth2/grant', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 200 && data.code) {
          go({ code: data.code, state: data.state });
        } else if (r.status === 401 && data.error === 'access_denied') {
          go({ error: 'access_denied', error_description: 'The user denied access.', state: data.state });
        } else if (r.status === 401) {
          fail('Your session has ended. Reload the page to sign in again.');
        } else {
          fail('Zephr could not complete the request: ' + (data.error_description || data.error || r.status));
        }
      });
    }).catch(function () { fail('The sandbox could not be reached. Is it still running?'); });
  }
  buttons[0].addEventListener('click', function () { decide(true); });
  buttons[1].addEventListener('click', function () { decide(false); });
})();
"""


def consent_page(
    client_name: str,
    scopes: Sequence[str],
    user_label: str,
    request: Mapping[str, str],
    logout_next: str,
    nonce: str,
    already_granted: Sequence[str] = (),
) -> str:
    """The Allow/Deny page; its script POSTs the request to /zephr/oauth2/grant then redirects."""
    items = "".join(f"<li>{escape(SCOPES.get(s, s))}<br><code>{escape(s)}</code></li>" for s in scopes)
    previously = (
        "<p>You allowed this app before; it is asking again.</p>"
        if already_granted and set(scopes) <= set(already_granted)
        else ""
    )
    body = (
        f"<h1>Allow {escape(client_name)} to access your account?</h1>"
        f'<div class="who">Signed in as <strong id="user">{escape(user_label)}</strong>.'
        '<form method="post" action="/zephr/logout" class="inline">'
        f'<input type="hidden" name="next" value="{escape(logout_next)}">'
        '<button class="link" type="submit" id="switch-user">Not you?</button></form></div>'
        f"<p><strong>{escape(client_name)}</strong> will be able to:</p>"
        f'<ul class="scopes" id="scopes">{items}</ul>{previously}'
        f'<script type="application/json" id="grant-request">{_script_json(dict(request))}</script>'
        '<div class="actions"><button id="deny" type="button">Deny</button>'
        '<button id="allow" class="primary" type="button">Allow</button></div>'
        '<div id="status" role="status" aria-live="polite"></div>'
        "<noscript><p>This page needs JavaScript: it posts your choice to /zephr/oauth2/grant "
        "and then takes you back to the app.</p></noscript>"
    )
    return layout("Allow access", body, nonce, script=_CONSENT_SCRIPT)


def error_page(title: str, error: str, description: str, nonce: str) -> str:
    """An error page; every value is escaped."""
    code = f'<p><code id="error-code">{escape(error)}</code></p>' if error else ""
    body = (
        f"<h1>{escape(title)}</h1>"
        f'<div class="error" role="alert" id="error-description">{escape(description)}</div>{code}'
        "<p>You can close this window and start the sign-in again from the app.</p>"
    )
    return layout(title, body, nonce)


def signed_in_page(user_label: str, nonce: str) -> str:
    """Shown after a sign-in that had nowhere to go next."""
    body = f"<h1>Signed in</h1><p>You are signed in as <strong>{escape(user_label)}</strong>.</p>"
    return layout("Signed in", body, nonce)


def simple_html(title: str, text: str) -> str:
    """A bare page, shaped like a proxy's or a framework's default error page."""
    return (
        f"<!doctype html><html><head><title>{escape(title)}</title></head>"
        f"<body><center><h1>{escape(title)}</h1></center><hr><center>{escape(text)}</center></body></html>"
    )
