from flask import Blueprint, current_app, jsonify, render_template, request

from crm_notes.models import Note

blueprint = Blueprint("notes_ui", __name__, template_folder="templates")


@blueprint.get("/")
def index():
    return render_template("crm_notes/index.html", notes=list(Note.alive().order_by(Note.id)))


@blueprint.post("/enqueue")
def enqueue():
    """Queue a job that adds a note (used by the worker test)."""
    result = current_app.extensions["crm_jobs"].enqueue("notes.add", request.form["title"])
    return jsonify({"queued": result.id}), 202
