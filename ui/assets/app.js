// kubeseal ui: the only script. It keeps pages live (re-fetching the page's main content
// every data-live milliseconds and swapping it in when it changed), and adds the small
// conveniences of the seal form. No inline script anywhere: the Content-Security-Policy
// allows only this file.
"use strict";
(function () {
  const main = document.querySelector("main[data-live]");
  if (main) {
    const every = Number(main.dataset.live) || 2000;
    let last = main.innerHTML;
    let busy = false;
    const refresh = async function () {
      if (busy || document.hidden) return;
      const active = document.activeElement;
      if (active && main.contains(active) && active.matches("input, select, textarea")) return;
      busy = true;
      try {
        const reply = await fetch(location.href, {
          headers: { "X-Kubeseal-UI": "partial" },
          credentials: "same-origin",
          cache: "no-store",
        });
        if (reply.ok) {
          const text = await reply.text();
          if (text !== last) {
            const focused = active && active.getAttribute ? active.getAttribute("href") : null;
            main.innerHTML = text;
            last = main.innerHTML;
            if (focused) {
              const again = Array.from(main.querySelectorAll("a[href]")).find(
                (a) => a.getAttribute("href") === focused);
              if (again) again.focus();
            }
          }
        }
      } catch (e) {
        // The server stopped or the network blinked: try again on the next tick.
      } finally {
        busy = false;
      }
    };
    setInterval(refresh, every);
  }

  const pairs = document.getElementById("pairs");
  const add = document.getElementById("add-pair");
  if (pairs && add) {
    add.addEventListener("click", function () {
      const first = pairs.querySelector(".pair");
      if (!first) return;
      const copy = first.cloneNode(true);
      copy.querySelectorAll("input, textarea").forEach((el) => { el.value = ""; });
      pairs.appendChild(copy);
      copy.querySelector("input").focus();
    });
  }

  const file = document.getElementById("manifest-file");
  const manifest = document.getElementById("manifest");
  if (file && manifest) {
    file.addEventListener("change", function () {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      chosen.text().then((text) => { manifest.value = text; });
    });
  }

  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      const area = document.getElementById(button.dataset.copy);
      if (!area) return;
      area.select();
      if (navigator.clipboard) {
        navigator.clipboard.writeText(area.value).then(() => { button.textContent = "Copied"; });
      }
    });
  });

  document.querySelectorAll("[data-save]").forEach(function (button) {
    button.addEventListener("click", function () {
      const area = document.getElementById(button.dataset.save);
      if (!area) return;
      const type = area.dataset.download.endsWith(".json") ? "application/json" : "application/yaml";
      const url = URL.createObjectURL(new Blob([area.value], { type: type }));
      const link = document.createElement("a");
      link.href = url;
      link.download = area.dataset.download;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    });
  });
})();
