"""Header names nexusmail itself writes and reads back."""

# On every mail we send; a mail coming back with it is our own (noise, never a case).
OWN_MAIL_HEADER = "X-Nexusmail-Outbox"
