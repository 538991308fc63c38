// Pan and zoom of the map: drag, wheel, keys and buttons. A press that does not move is a click.

const CLICK_SLOP_PX = 4;
const WHEEL_STEP = 1.2;
const KEY_PAN_PX = 60;

// on: changed() after the view moved, click(sx, sy) in canvas pixels, fit()
export function attachControls(canvas, view, on) {
  let drag = null;

  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    drag = { x: event.clientX, y: event.clientY, moved: false };
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < CLICK_SLOP_PX) return;
    drag.moved = true;
    canvas.classList.add("dragging");
    view.panBy(dx, dy);
    drag.x = event.clientX;
    drag.y = event.clientY;
    on.changed();
  });
  canvas.addEventListener("pointerup", (event) => {
    if (drag && !drag.moved) {
      const box = canvas.getBoundingClientRect();
      on.click(event.clientX - box.left, event.clientY - box.top);
    }
    drag = null;
    canvas.classList.remove("dragging");
  });
  canvas.addEventListener("pointercancel", () => {
    drag = null;
    canvas.classList.remove("dragging");
  });

  canvas.addEventListener("wheel", (event) => {
    event.preventDefault(); // the page itself must not scroll
    const box = canvas.getBoundingClientRect();
    const factor = event.deltaY < 0 ? WHEEL_STEP : 1 / WHEEL_STEP;
    view.zoomAt(event.clientX - box.left, event.clientY - box.top, factor);
    on.changed();
  }, { passive: false });

  canvas.addEventListener("keydown", (event) => {
    const moves = {
      ArrowLeft: [KEY_PAN_PX, 0], ArrowRight: [-KEY_PAN_PX, 0],
      ArrowUp: [0, KEY_PAN_PX], ArrowDown: [0, -KEY_PAN_PX],
    };
    if (moves[event.key]) view.panBy(...moves[event.key]);
    else if (event.key === "+" || event.key === "=") zoomCentre(view, 1.5);
    else if (event.key === "-") zoomCentre(view, 1 / 1.5);
    else return;
    event.preventDefault();
    on.changed();
  });

  document.getElementById("zoom-in").addEventListener("click", () => { zoomCentre(view, 1.5); on.changed(); });
  document.getElementById("zoom-out").addEventListener("click", () => { zoomCentre(view, 1 / 1.5); on.changed(); });
  document.getElementById("fit").addEventListener("click", () => on.fit());
}

function zoomCentre(view, factor) {
  view.zoomAt(view.width / 2, view.height / 2, factor);
}
