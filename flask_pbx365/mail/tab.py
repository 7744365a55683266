"""The Mail tab: send the PBX's notification emails through Microsoft 365 as a chosen mailbox, and test it."""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for

from ..exceptions import ConfigurationError
from ..feature import Tab
from ..host import MailMessage
from ..routing import Routes
from ..settings import get_settings
from ..state import get_state
from ..tenants import find_config
from ..views.admin import current_tenant, render_tab, save_section
from .outbox import queue_message, retry_message
from .store import get_message, list_messages, message_json

routes = Routes()


def _page(form: dict | None = None, error: str | None = None, status: int = 200):
    tenant = current_tenant()
    config = find_config(tenant)
    return render_tab(
        "pbx365/mail.html", form=form or get_settings(tenant)["mail"], error=error,
        connected=bool(config and config.client_id and config.directory_id),
        messages=[message_json(m) for m in list_messages(tenant)],
        admin_emails=get_state().host.admin_emails(tenant)), status


@routes.route("/mail", methods=["GET", "POST"])
def mail():
    if request.method == "GET":
        return _page()
    form = {"enabled": request.form.get("enabled") == "on", "sender": request.form.get("sender", "").strip(),
            "save_to_sent_items": request.form.get("save_to_sent_items") == "on"}
    if form["enabled"] and not form["sender"]:
        return _page(form=form, status=400, error="Enter the sender address (a mailbox in your Microsoft 365 "
                                                  "tenant) before enabling mail through Microsoft 365.")
    error = save_section("mail", form)
    if error:
        return _page(form=form, error=error, status=400)
    flash("Saved.", "success")
    return redirect(url_for("pbx365_admin.mail"))


@routes.post("/mail/test")
def mail_test():
    """Queue a test email as the saved sender (enabled or not yet), so the admin can check before switching."""
    tenant = current_tenant()
    options = get_settings(tenant)["mail"]
    to = [a.strip() for a in request.form.get("to", "").replace(";", ",").split(",") if a.strip()]
    if not options["sender"]:
        return _page(error="Save a sender address first.", status=400)
    if not to or any("@" not in a for a in to):
        return _page(error="Enter the address to send the test email to.", status=400)
    row = queue_message(tenant, MailMessage(
        to=to, subject="Test email from your PBX through Microsoft 365",
        body=f"This test email was sent by the PBX through Microsoft 365 as {options['sender']}. If you can read "
             "it, mail through Microsoft 365 works."), sender=options["sender"],
        save_to_sent_items=options["save_to_sent_items"])
    get_state().db.session.commit()
    flash(f"Test email to {', '.join(to)} queued; its status shows under Recent emails (refresh the page).",
          "success")
    return redirect(url_for("pbx365_admin.mail", highlight=row.id))


@routes.post("/mail/<message_id>/retry")
def mail_retry(message_id: str):
    if get_message(current_tenant(), message_id) is None:
        abort(404)  # another tenant's email does not exist for this admin
    try:
        retry_message(current_tenant(), message_id)
    except ConfigurationError as exc:
        return _page(error=str(exc), status=400)
    get_state().db.session.commit()
    flash("Queued again.", "success")
    return redirect(url_for("pbx365_admin.mail"))


TAB = Tab("mail", "Mail", routes)
