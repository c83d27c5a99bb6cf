"""django-helpdesk as a peer for the email benchmark, run in a virtualenv of its own.

    python bench/peers/django_helpdesk.py MAILDIR   (inside that virtualenv)

Sets up a Django project on SQLite with one django-helpdesk queue whose mailbox is
the local directory MAILDIR (django-helpdesk's ``local`` mailbox type: no IMAP
server needed), then times its own email intake (``helpdesk.email.process_email``,
what ``manage.py get_email`` runs) over every mail in MAILDIR: each becomes a ticket,
and django-helpdesk mails the submitter an acknowledgement (to Django's in-memory
mail backend here). Prints one JSON line: mails, seconds, tickets.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    maildir = Path(sys.argv[1])
    project = Path(tempfile.mkdtemp(prefix="django-helpdesk-peer-"))
    (project / "peer_settings.py").write_text(
        f"""
SECRET_KEY = "benchmark"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
SITE_ID = 1
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "django.contrib.sites",
    "django.contrib.humanize", "rest_framework", "helpdesk",
]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
                          "NAME": {str(project / "helpdesk.db")!r}}}}}
ROOT_URLCONF = "peer_urls"
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates",
              "APP_DIRS": True, "OPTIONS": {{"context_processors": []}}}}]
MIDDLEWARE = []
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
MEDIA_ROOT = {str(project / "media")!r}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
HELPDESK_TEAMS_MODE_ENABLED = False
""",
        encoding="utf-8",
    )
    (project / "peer_urls.py").write_text(
        "from django.urls import include, path\n"
        'urlpatterns = [path("helpdesk/", include("helpdesk.urls", namespace="helpdesk"))]\n',
        encoding="utf-8",
    )
    sys.path.insert(0, str(project))
    os.environ["DJANGO_SETTINGS_MODULE"] = "peer_settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from helpdesk.email import process_email
    from helpdesk.models import Queue, Ticket

    Queue.objects.create(
        title="Support",
        slug="support",
        email_address="support@shop.example",
        allow_email_submission=True,
        email_box_type="local",
        email_box_local_dir=str(maildir),
        email_box_interval=0,
    )
    mails = len(list(maildir.iterdir()))
    started = time.perf_counter()
    process_email(quiet=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"mails": mails, "seconds": seconds, "tickets": Ticket.objects.count()}))


if __name__ == "__main__":
    main()
