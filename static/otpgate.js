// otpgate's code-entry page: the resend countdown, delivery status and
// WebOTP. The page works without this script (a reload shows the status);
// the server enforces every limit either way.
"use strict";
(function () {
  var resend = document.getElementById("resend");
  var status = document.getElementById("resend-status");
  if (resend && status) {
    var left = parseInt(resend.getAttribute("data-wait") || "0", 10);
    var counter = document.getElementById("countdown");
    if (left > 0 && counter) {
      resend.disabled = true;
      var timer = setInterval(function () {
        left -= 1;
        if (left <= 0) {
          clearInterval(timer);
          resend.disabled = false;
          status.textContent = status.getAttribute("data-ready");
        } else {
          counter.textContent = String(left);
        }
      }, 1000);
    }
  }

  // Delivery status: poll /.otpgate/status, show where the message stands,
  // offer the other channels when it failed or is late, and ask for the
  // automatic fallback (same code, next channel) when the server says it is
  // due. The server decides; this only asks, once.
  var line = document.getElementById("delivery");
  var resendForm = document.getElementById("resend-form");
  var alternatives = document.getElementById("alternatives");
  if (line && resendForm && window.fetch && window.URLSearchParams) {
    var polls = 0;
    var askedFallback = false;
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
          if (s.resend_in === 0 && resend && resend.disabled) {
            resend.disabled = false;
            if (status) { status.textContent = status.getAttribute("data-ready"); }
          }
          if (s.progress === "fallback" && !askedFallback) {
            askedFallback = true;
            var body = new URLSearchParams(new FormData(resendForm));
            body.set("fallback", "1");
            // "manual": the answer is a redirect to the code page; following it
            // would load (and, if the code died meanwhile, send) for nothing.
            fetch(resendForm.action, { method: "POST", body: body, credentials: "same-origin", redirect: "manual" })
              .catch(function () { /* the next poll shows what happened */ });
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
