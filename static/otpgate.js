// otpgate's code-entry page: the resend countdown and WebOTP. The page works
// without this script; the server enforces every limit either way.
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
