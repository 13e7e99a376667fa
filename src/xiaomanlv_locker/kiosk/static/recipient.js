// Recipient keypad: enter a pickup code (on-screen keys or a keyboard), see which door opened,
// why a code was refused, or the lockout countdown. The code is cleared from the screen as soon
// as it is sent and is never shown back.
"use strict";

(() => {
  const length = Number(document.body.dataset.codeLength);
  const form = document.getElementById("code-form");
  const input = document.getElementById("code");
  const result = document.getElementById("result");
  const message = document.getElementById("message");
  const detail = document.getElementById("detail");
  const countdown = document.getElementById("countdown");
  const controls = [input, ...document.querySelectorAll(".key"), document.getElementById("open")];
  const IDLE_RESET = 120000; // [ms] an answer stays this long, then the keypad is blank again
  const PERMANENT_PAUSE = 60000; // [ms] keypad off after a lockout only an operator clears

  let busy = false;
  let reachable = true;
  let lockedUntil = 0; // [ms] performance.now() until which codes are locked out
  let openDoor = 0; // the door the page waits to see closed
  let resetTimer = 0;
  let countdownTimer = 0;

  const lockedOut = () => performance.now() < lockedUntil;

  let wasDisabled = false;

  function refreshControls() {
    const disabled = busy || !reachable || lockedOut();
    for (const el of controls) el.disabled = disabled;
    if (wasDisabled && !disabled) input.focus(); // ready again: typing goes to the field
    wasDisabled = disabled;
  }

  function show(kind, text, more = "") {
    result.className = `result ${kind}`;
    message.textContent = text;
    detail.textContent = more && more !== text ? more : "";
    clearTimeout(resetTimer);
    resetTimer = setTimeout(() => show("idle", ""), IDLE_RESET);
  }

  function type(digit) {
    if (input.disabled || input.value.length >= length) return;
    input.value += digit;
  }

  function startCountdown(seconds) {
    lockedUntil = performance.now() + seconds * 1000;
    countdown.hidden = false;
    clearInterval(countdownTimer);
    const tick = () => {
      const left = Math.ceil((lockedUntil - performance.now()) / 1000);
      if (left <= 0) {
        clearInterval(countdownTimer);
        countdown.hidden = true;
        countdown.textContent = "";
        show("idle", "You can try again now.");
        refreshControls();
        return;
      }
      countdown.textContent = `Try again in ${left} s`;
    };
    tick();
    countdownTimer = setInterval(tick, 250);
    refreshControls();
  }

  async function submit() {
    if (busy || lockedOut() || !reachable) return;
    const code = input.value;
    input.value = "";
    busy = true;
    refreshControls();
    show("pending", "Checking your code...");
    const { status, data } = await window.kiosk.postJson("/api/code", { code });
    busy = false;
    if (status === 200 && data.ok) {
      openDoor = data.compartment;
      show("success", data.message);
    } else if (status === 429 && data.permanent) {
      show("locked", data.message, data.detail);
      lockedUntil = performance.now() + PERMANENT_PAUSE;
      setTimeout(refreshControls, PERMANENT_PAUSE + 50);
    } else if (status === 429) {
      show("locked", data.message, data.detail);
      startCountdown(Number(data.retry_after) || 1);
    } else if (status === 503) {
      show("error", data.message || window.kiosk.UNAVAILABLE);
    } else {
      show("error", data.message || "Something went wrong. Please try again.", data.detail);
    }
    refreshControls();
  }

  for (const key of document.querySelectorAll(".key[data-digit]")) {
    key.addEventListener("click", () => {
      type(key.dataset.digit);
      input.focus();
    });
  }
  document.getElementById("key-clear").addEventListener("click", () => {
    input.value = "";
    input.focus();
  });
  document.getElementById("key-back").addEventListener("click", () => {
    input.value = input.value.slice(0, -1);
    input.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  // A physical keypad works even when the field has lost focus.
  document.addEventListener("keydown", (event) => {
    if (event.target === input || event.ctrlKey || event.metaKey || event.altKey) return;
    if (/^[0-9]$/.test(event.key)) {
      type(event.key);
      event.preventDefault();
    } else if (event.key === "Backspace") {
      input.value = input.value.slice(0, -1);
      event.preventDefault();
    } else if (event.key === "Enter") {
      submit();
      event.preventDefault();
    }
  });

  window.kiosk.watchStatus((status) => {
    reachable = Boolean(status.reachable);
    refreshControls();
    if (!openDoor) return;
    const door = (status.compartments || []).find((c) => c.compartment === openDoor);
    if (door && door.door_closed && door.state !== "open") {
      show("success", `Door ${openDoor} is closed. Thank you!`);
      openDoor = 0;
    }
  }, 1000);
  refreshControls();
})();
