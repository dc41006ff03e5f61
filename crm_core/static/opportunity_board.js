// The opportunity board's drag-and-drop: a progressive enhancement of the "Move to" form
// on each card (which works without script). A drop asks the API to move the card; when
// the move is refused the card stays where it was and every unmet requirement is shown.
(function () {
  "use strict";
  var board = document.querySelector(".board[data-move-url]");
  if (!board) { return; }
  var problem = document.getElementById("board-problem");
  var dragged = null;

  function showProblem(title, messages, link) {
    problem.textContent = "";
    var heading = document.createElement("p");
    heading.textContent = title;
    problem.appendChild(heading);
    if (messages.length) {
      var list = document.createElement("ul");
      messages.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      problem.appendChild(list);
    }
    if (link) {
      var anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      problem.appendChild(anchor);
    }
    problem.hidden = false;
    problem.setAttribute("tabindex", "-1");
    problem.focus();
  }

  board.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest(".card[draggable=true]");
    if (!card) { return; }
    dragged = card;
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.dataset.id);
    card.classList.add("dragging");
  });
  board.addEventListener("dragend", function () {
    if (dragged) { dragged.classList.remove("dragging"); }
    dragged = null;
  });
  board.addEventListener("dragover", function (event) {
    if (dragged && event.target.closest(".board-column")) { event.preventDefault(); }
  });
  board.addEventListener("drop", function (event) {
    var column = event.target.closest(".board-column");
    if (!dragged || !column) { return; }
    event.preventDefault();
    var card = dragged;
    var from = card.closest(".board-column");
    if (from === column) { return; }
    var url = board.dataset.moveUrl.replace("/0/", "/" + card.dataset.id + "/");
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": board.dataset.csrf, "If-Match": '"' + card.dataset.version + '"'},
      body: JSON.stringify({stage_id: parseInt(column.dataset.stageId, 10)})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (answer) {
      if (answer.ok) {
        // The totals of both columns change: the page draws them again.
        window.location.reload();
        return;
      }
      var error = answer.body.error || {};
      var messages = [];
      Object.keys(error.fields || {}).forEach(function (field) {
        [].concat(error.fields[field]).forEach(function (text) { messages.push(text); });
      });
      var link = card.querySelector("a");
      showProblem(error.message || "", messages, {
        href: link.href + "?move_to=" + column.dataset.stageId + "#move-form",
        text: card.querySelector("a").textContent
      });
    }).catch(function () {
      showProblem(board.dataset.failed || "", [], null);
    });
  });
}());
