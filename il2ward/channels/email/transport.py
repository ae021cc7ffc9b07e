"""E-mail through Django's mail (the console backend in the demo: the message appears in the worker log)."""

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from il2ward.channels.base import ChannelError, Message


def send(message: Message, *, delivery_id: int, attempt: int) -> None:
    if not message.recipient_email:
        raise ChannelError("no e-mail address")
    lines = [message.label, "", f"Ward: {message.ward}"]
    if message.due_at_local:
        lines.append(f"Due: {message.due_readable}")
    lines.append(f"Sent: {message.created_readable}")
    if message.patient_id:
        lines.append(f"Patient: {message.patient_id} ({message.patient_initials})")
    if message.cycle:
        lines.append(f"Dose: cycle {message.cycle}, dose {message.number}")
    if message.rules:
        lines.append(f"Rules: {', '.join(message.rules)}")
    lines += [f"Open: {message.link}", "", "Acknowledge it in IL2Ward: the bell at the top of every page."]
    mail = EmailMessage(
        subject=message.subject,
        body="\n".join(lines),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.recipient_email],
        headers={"X-IL2Ward-Notification": str(message.notification_id), "X-IL2Ward-Delivery": str(delivery_id)},
        connection=get_connection(timeout=settings.IL2WARD_EMAIL_TIMEOUT_SECONDS),
    )
    try:
        sent = mail.send(fail_silently=False)
    except Exception as exc:  # noqa: BLE001 - SMTP, socket and DNS errors alike: retried by the sweep
        raise ChannelError(type(exc).__name__) from exc
    if sent != 1:
        raise ChannelError("not accepted")
