// otpgate's code-entry page: the resend countdown, delivery status and
// WebOTP. The page works without this script (a reload shows the status);
// the server enforces every limit either way.
"use strict";
(function () {
  var resend = document.getElementById("resend");
  var status = document.getElementById("resend-status");
  // A limit (not the cooldown) holds resends: only its own wait ends it.
  var held = !!resend && resend.getAttribute("data-held") === "1";
  if (resend && status) {
    var left = parseInt(resend.getAttribute("data-wait") || "0", 10);
    // Absent for waits said in minutes or hours: those are not counted
    // down on screen, but the button still waits for them.
    var counter = document.getElementById("countdown");
    if (left > 0) {
      resend.disabled = true;
      var timer = setInterval(function () {
        left -= 1;
        if (left <= 0) {
          clearInterval(timer);
          resend.disabled = false;
          status.textContent = status.getAttribute("data-ready");
        } else if (counter) {
          counter.textContent = String(left);
        }
      }, 1000);
    }
  }

  // Delivery status: poll /.otpgate/status, show where the message stands
  // and offer the other channels when it failed or is late. The WhatsApp
  // to SMS fallback is the gateway's own doing (a background tab's timers
  // stop): this script only shows it.
  var line = document.getElementById("delivery");
  var alternatives = document.getElementById("alternatives");
  if (line && window.fetch) {
    var polls = 0;
    var poll = function () {
      polls += 1;
      fetch("/.otpgate/status", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          if (!s) { return; }
          if (s.progress === "done") { window.location.reload(); return; }
          if (s.text) { line.textContent = s.text; }
          line.setAttribute("data-progress", s.progress);
          if (alternatives) { alternatives.hidden = !s.alternatives; }
          // A failure report lifts the cooldown early; a limit's wait stays.
          if (s.resend_in === 0 && resend && resend.disabled && !held) {
            resend.disabled = false;
            if (status) { status.textContent = status.getAttribute("data-ready"); }
          }
          var open = s.progress === "waiting" || s.progress === "fallback" ||
            s.progress === "late" || s.progress === "none";
          if (open && polls < 150) { setTimeout(poll, 2000); }
        })
        .catch(function () { if (polls < 150) { setTimeout(poll, 5000); } });
    };
    setTimeout(poll, 1500);
  }

  // WebOTP (WICG): Chrome on Android reads the origin-bound last line of the
  // SMS ("@host #code") and hands us the code; we fill it in and submit.
  var form = document.getElementById("verify-form");
  var input = document.getElementById("code");
  if (form && input && "OTPCredential" in window) {
    var abort = new AbortController();
    form.addEventListener("submit", function () { abort.abort(); });
    navigator.credentials
      .get({ otp: { transport: ["sms"] }, signal: abort.signal })
      .then(function (otp) {
        if (otp && otp.code) {
          input.value = otp.code;
          form.submit();
        }
      })
      .catch(function () { /* the user typed the code instead, or dismissed the prompt */ });
  }
})();
