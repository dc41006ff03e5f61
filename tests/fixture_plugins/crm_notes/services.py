from crm_core.records import create_record
from crm_notes.models import Note


def add_note(title, amount=None, currency=None):
    return create_record(Note, title=title, amount=amount, currency=currency).id
