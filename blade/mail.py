"""The deployment e-mail (R-DEP8, R-DEP9): template, placeholders, validation and rendering."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Flask
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from server_manager_stub import options
from server_manager_stub.outbox import Part, Rendered

from .qr import qr_png

RENDERER = "client_deployment.deployment_email"
SUBJECT_KEY = "client_deployment.email.subject"
BODY_KEY = "client_deployment.email.body"
LINKS_KEY = "client_deployment.email.store_links"

SUBJECT_PLACEHOLDERS = ("firstname", "lastname", "dn")
BODY_PLACEHOLDERS = (
    *SUBJECT_PLACEHOLDERS,
    "appstore",
    "playstore",
    "microsoftstore",
    "bbworld",
    "appstore_mac",
    "winpc",
    "link",
    "authtoken",
    "qrcode",
)
REQUIRED_IN_BODY = ("link", "authtoken", "qrcode")
PLACEHOLDER = re.compile(r"\[#####([A-Za-z0-9_]+)#####\]")
ALMOST = re.compile(r"\[#{1,10}\s*([A-Za-z0-9_]+)\s*#{1,10}\]")

# Store links: settings an administrator may change, with public defaults.
STORE_LINKS = {
    "appstore": ("App Store (iPhone, iPad)", "https://apps.apple.com/search?term=MiCollab"),
    "playstore": ("Google Play", "https://play.google.com/store/search?q=MiCollab&c=apps"),
    "microsoftstore": ("Microsoft Store", "https://apps.microsoft.com/search?query=MiCollab"),
    "bbworld": ("BlackBerry World", "https://appworld.blackberry.com/webstore/search/MiCollab"),
    "appstore_mac": ("Mac App Store", "https://apps.apple.com/search?term=MiCollab&platform=mac"),
    "winpc": ("Windows download", "https://www.mitel.com/search?q=MiCollab%20for%20PC"),
}

DEFAULT_SUBJECT = (
    "MiCollab: your phone's setup, [#####firstname#####] [#####lastname#####] ([#####dn#####])"
)
DEFAULT_BODY = """Hello [#####firstname#####],

your MiCollab client is ready to be set up with your number [#####dn#####].

1. Install MiCollab on your phone or computer:
   iPhone and iPad: [#####appstore#####]
   Android: [#####playstore#####]
   Windows phone: [#####microsoftstore#####]
   BlackBerry: [#####bbworld#####]
   Mac: [#####appstore_mac#####]
   Windows PC: [#####winpc#####]

2. Then, on the device, open this link: [#####link#####]
   or scan this QR code with it: [#####qrcode#####]
   or start MiCollab and enter the authentication token: [#####authtoken#####]

The link works three times and for six weeks. If your administrator gave you a PIN, MiCollab
asks for it; the PIN is never sent by e-mail.
"""


def problems(subject: str, body: str) -> dict[str, list[str]]:
    """Messages for the subject and body fields; empty lists when both are fine."""
    found = {
        "subject": _placeholder_problems(subject, SUBJECT_PLACEHOLDERS),
        "body": _placeholder_problems(body, BODY_PLACEHOLDERS),
    }
    if body.strip():
        present = set(PLACEHOLDER.findall(body))
        missing = [p for p in REQUIRED_IN_BODY if p not in present]
        if missing:
            found["body"].append(
                "The body must contain "
                + ", ".join(f"[#####{p}#####]" for p in missing)
                + ": without them the user cannot set up "
                "the client."
            )
    return found


def _placeholder_problems(text: str, allowed: tuple[str, ...]) -> list[str]:
    result = []
    for name in PLACEHOLDER.findall(text):
        if name not in allowed:
            result.append(
                f"[#####{name}#####] is not a placeholder here; use "
                + ", ".join(f"[#####{a}#####]" for a in allowed)
                + "."
            )
    stripped = PLACEHOLDER.sub("", text)
    for match in ALMOST.finditer(stripped):
        result.append(
            f"{match.group(0)} looks like a placeholder but is not written as "
            f"[#####{match.group(1)}#####] (five # on each side)."
        )
    return result


@dataclass
class Template:
    """The subject and body in use (the stored ones or the built-in defaults) and store links."""

    subject: str
    body: str
    links: dict[str, str]


def current(s: Session) -> Template:
    """The template deployments use now."""
    links = {k: v for k, (_, v) in STORE_LINKS.items()}
    links.update(options.get(s, LINKS_KEY) or {})
    return Template(
        options.get(s, SUBJECT_KEY) or DEFAULT_SUBJECT,
        options.get(s, BODY_KEY) or DEFAULT_BODY,
        links,
    )


def save(s: Session, subject: str, body: str, links: dict[str, str]) -> None:
    """Store the template; empty subject or body means the built-in default."""
    options.put(s, SUBJECT_KEY, subject.strip() or None)
    options.put(s, BODY_KEY, body.strip() or None)
    defaults = {k: v for k, (_, v) in STORE_LINKS.items()}
    changed = {k: v for k, v in links.items() if v and v != defaults.get(k)}
    options.put(s, LINKS_KEY, changed or None)


def render_args(
    template: Template, *, first_name: str, last_name: str, dn: str, link: str, auth_token: str
) -> dict[str, Any]:
    """What the worker needs to compose one deployment e-mail (stored encrypted)."""
    return {
        "subject": template.subject,
        "body": template.body,
        "links": template.links,
        "firstname": first_name,
        "lastname": last_name,
        "dn": dn,
        "link": link,
        "authtoken": auth_token,
    }


def _values(args: dict[str, Any]) -> dict[str, str]:
    values = {
        k: str(args.get(k) or "") for k in ("firstname", "lastname", "dn", "link", "authtoken")
    }
    values.update({k: str(v) for k, v in (args.get("links") or {}).items()})
    return values


def render(args: dict[str, Any], app: Flask | None = None) -> Rendered:
    """Compose the e-mail: plain text, HTML with user values escaped, and the QR code PNG."""
    values = _values(args)
    subject = PLACEHOLDER.sub(lambda m: values.get(m.group(1), ""), args["subject"])
    subject = " ".join(subject.split())  # no line breaks in a header
    text = PLACEHOLDER.sub(
        lambda m: (
            "(the QR code is in the HTML version of this e-mail)"
            if m.group(1) == "qrcode"
            else values.get(m.group(1), "")
        ),
        args["body"],
    )

    def html_value(match: re.Match) -> str:
        name = match.group(1)
        if name == "qrcode":
            return str(
                Markup(
                    '<img src="cid:qrcode" alt="QR code of your link" width="240" '
                    'height="240" style="display:block;margin:8px 0">'
                )
            )
        value = values.get(name, "")
        if name == "link" or name in STORE_LINKS:
            return str(Markup('<a href="{0}">{0}</a>').format(value))
        if name == "authtoken":
            return str(Markup("<strong>{}</strong>").format(value))
        return str(escape(value))

    # Escape the administrator's text first, then put the (escaped) values in.
    escaped = str(escape(args["body"]))
    body_html = PLACEHOLDER.sub(html_value, escaped).replace("\n", "<br>\n")
    html = (
        '<!doctype html><html><body style="font-family:sans-serif;line-height:1.5">'
        f"{body_html}</body></html>"
    )
    inline = [Part("qrcode.png", "image/png", qr_png(values["link"]), cid="qrcode")]
    return Rendered(subject=subject, text=text, html=html, inline=inline)
