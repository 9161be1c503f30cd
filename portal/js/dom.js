// Building the page from data without HTML strings: every value lands as text, never as markup, so nothing a
// request, a tenant or a directory says can inject script (and the Content-Security-Policy forbids inline script).

/** An element: h("button", {class: "primary", onclick: fn, disabled: true}, "Save"). */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      element.className = value;
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (name === "value" || name === "checked" || name === "selected") {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replace what `parent` holds. */
export function fill(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

let counter = 0;
/** A document-unique id for label/aria wiring. */
export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A labelled form field: the label, the control, an optional hint, and a slot for its error (aria-describedby). */
export function field({ label, control, hint, required = false, name }) {
  const id = control.id || uid(name || "field");
  control.id = id;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const described = [hint ? hintId : null, errorId].filter(Boolean).join(" ");
  control.setAttribute("aria-describedby", described);
  if (required) control.setAttribute("aria-required", "true");
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  const wrapper = h(
    "div",
    { class: "field", dataset: { field: name || "" } },
    h("label", { for: id }, label, required ? h("span", { class: "required", "aria-hidden": "true" }, " *") : null),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null,
    control,
    error,
  );
  return { wrapper, control, error };
}

/** Show (or clear, with an empty list) the problems of one field, next to it, and mark the control invalid. */
export function showErrors(slot, control, messages) {
  const list = (messages || []).filter(Boolean);
  slot.hidden = list.length === 0;
  fill(slot, list.length ? list.join(" ") : "");
  if (control) {
    if (list.length) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  }
}

/** A modal <dialog> with a title, content and buttons. Resolves with the value of the button that closed it (null
 * for Cancel or Escape). With `onSubmit(value)`, a submit runs it first and the dialog stays open, showing the
 * message, when it returns one (a refused extension, say). */
export function dialog({ title, content, actions, onSubmit }) {
  return new Promise((resolve) => {
    const titleId = uid("dialog-title");
    const box = h("dialog", { class: "dialog", "aria-labelledby": titleId });
    const problem = h("p", { class: "notice notice--error", role: "alert", hidden: true });
    const buttons = actions.map((a) =>
      h("button", { type: a.submit ? "submit" : "button", value: a.value, class: a.class || "" }, a.label),
    );
    const form = h("form", { method: "dialog" });
    append(form, [h("h2", { id: titleId }, title), content, problem, h("div", { class: "actions" }, buttons)]);
    form.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (button && button.type === "button" && buttons.includes(button)) {
        box.returnValue = button.value;
        box.close();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      const value = (event.submitter && event.submitter.value) || "ok";
      if (onSubmit) {
        buttons.forEach((b) => (b.disabled = true));
        let message;
        try {
          message = await onSubmit(value);
        } catch (error) {
          message = error && error.message ? error.message : String(error);
        } finally {
          buttons.forEach((b) => (b.disabled = false));
        }
        if (message) {
          problem.hidden = false;
          problem.textContent = message;
          return;
        }
      }
      box.returnValue = value;
      box.close();
    });
    box.append(form);
    box.addEventListener("close", () => {
      box.remove();
      resolve(box.returnValue && box.returnValue !== "cancel" ? box.returnValue : null);
    });
    document.body.append(box);
    box.showModal();
  });
}
