// Operator page: load a parcel (the locker picks the compartment) and see every compartment.
"use strict";

(() => {
  const form = document.getElementById("load-form");
  const result = document.getElementById("result");
  const message = document.getElementById("message");
  const detail = document.getElementById("detail");
  const button = document.getElementById("load");
  const table = document.querySelector("#compartments tbody");
  const FIELDS = ["operator_id", "operator_credential", "parcel_id", "recipient", "stop", "size"];

  function show(kind, text, more = "") {
    result.className = `result ${kind}`;
    message.textContent = text;
    detail.textContent = more;
  }

  function markInvalid(field) {
    for (const name of FIELDS) {
      const el = document.getElementById(name);
      el.removeAttribute("aria-invalid");
      el.classList.remove("field-error");
    }
    if (!field) return;
    const el = document.getElementById(field);
    el.setAttribute("aria-invalid", "true");
    el.classList.add("field-error");
    el.focus();
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const name of FIELDS) body[name] = document.getElementById(name).value;
    button.disabled = true;
    show("pending", "Loading...");
    const { status, data } = await window.kiosk.postJson("/api/load", body);
    button.disabled = false;
    if (status === 200 && data.ok) {
      markInvalid("");
      const expires = data.expires ? `Code expires ${new Date(data.expires).toLocaleString()}.` : "";
      show("success", `Compartment ${data.compartment}`, `${data.message} ${expires}`.trim());
      document.getElementById("parcel_id").value = "";
      document.getElementById("recipient").value = "";
      document.getElementById("parcel_id").focus();
    } else {
      markInvalid(data.field || "");
      show("error", data.message || "The parcel was not loaded.");
    }
  });

  window.kiosk.watchStatus((status) => {
    const rows = (status.compartments || []).map((c) => {
      const row = document.createElement("tr");
      for (const value of [c.compartment, c.size, c.state, c.door_closed ? "yes" : "no", c.fault]) {
        const cell = document.createElement("td");
        cell.textContent = String(value);
        row.append(cell);
      }
      return row;
    });
    table.replaceChildren(...rows);
  });
})();
