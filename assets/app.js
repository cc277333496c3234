// The main window's page. It talks to Python only through window.pywebview.api (the page's
// functions in gui/api.py), and only after pywebview says the bridge is ready. Every bridge call answers
// {ok: true, ...} or {ok: false, error: "<message in words>"}.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);

  let catalog = null;
  let state = null;
  let bridgeReady = false;
  let formMode = null; // "add" | "edit" | null (closed)
  let revealed = false;
  let countdownTimer = null;
  const copyTimers = new Map();

  // --- bridge ------------------------------------------------------------------------
  async function call(method, ...args) {
    if (!bridgeReady) return { ok: false, error: "The app is still starting. Try again in a moment." };
    try {
      const result = await window.pywebview.api[method](...args);
      return result || { ok: false, error: "The app gave no answer. Try again." };
    } catch (err) {
      return { ok: false, error: (err && err.message) || "The app could not do that. Try again." };
    }
  }

  async function refreshState() {
    const result = await call("state");
    if (result.ok) render(result);
    else showError(result.error);
  }

  // Python pushes {type: ...} when something changes behind the page's back.
  window.zephrPush = function (event) {
    if (event && event.type === "profile_selected") resetTokenView(); // another launch asked for a profile
    // The event carries the state (saving a call back over the bridge); once the page has drawn itself.
    if (event && event.state && event.state.ok && catalog) render(event.state);
    else refreshState();
    return true;
  };

  // --- helpers -------------------------------------------------------------------------
  function showError(message) {
    const el = byTestId("error");
    el.textContent = message || "";
    el.hidden = !message;
  }

  function setStatus(message) {
    byTestId("status-line").textContent = message || "";
  }

  function formatLeft(seconds) {
    if (seconds === null || seconds === undefined) return "no expiry";
    if (seconds <= 0) return "Expired";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const pad = (n) => String(n).padStart(2, "0");
    return h > 0 ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
  }

  function current() {
    if (!state || !state.current) return null;
    return state.profiles.find((p) => p.name === state.current) || null;
  }

  // --- rendering ------------------------------------------------------------------------
  function render(next) {
    state = next;
    document.getElementById("main").classList.remove("loading");
    const profiles = state.profiles || [];
    const profile = current();

    // Header: a switcher only when there is a choice.
    const select = byTestId("profile-select");
    select.replaceChildren(
      ...profiles.map((p) => {
        const opt = document.createElement("option");
        opt.value = p.name;
        opt.textContent = p.name;
        opt.selected = p.name === state.current;
        return opt;
      })
    );
    select.disabled = !!state.signing_in;
    $("profile-switch").hidden = profiles.length < 2;
    const nameEl = $("profile-name");
    nameEl.hidden = profiles.length !== 1;
    if (profile) {
      nameEl.replaceChildren("Profile ", Object.assign(document.createElement("b"), { textContent: profile.name }));
    }
    $("demo-badge").hidden = !state.demo_hint;

    showError(state.error);

    // First run: nothing to sign in to yet, so the form is the page.
    if (profiles.length === 0 && formMode === null) openForm("add");
    $("signin-card").hidden = !profile || formMode !== null;
    $("howto-card").hidden = !profile || formMode !== null || !!state.token;
    $("settings-card").hidden = formMode === null;
    byTestId("settings").setAttribute("aria-expanded", String(formMode !== null));

    if (profile) renderSignIn(profile);
    renderToken(profile);
    if (formMode !== null) renderFormChrome();
  }

  function renderSignIn(profile) {
    $("site-url").textContent = profile.site_url;
    const scopes = profile.scopes.join(", ");
    $("site-meta").textContent = `Client ${profile.client_id} \u00b7 ${scopes}`;
    const waiting = !!state.signing_in;
    const signIn = byTestId("sign-in");
    signIn.disabled = waiting;
    signIn.querySelector("span").textContent = state.token ? "Sign in again" : "Sign in";
    $("waiting").hidden = !waiting;
    // While waiting, the status line is the panel's title; otherwise it sits under the card.
    const status = byTestId("status-line");
    if (waiting && status.parentElement !== $("waiting-text")) $("waiting-text").prepend(status);
    if (!waiting && status.parentElement === $("waiting-text")) $("signin-card").insertBefore(status, $("demo-hint"));
    status.classList.toggle("in-panel", waiting);
    // A redirect URI that is not on this computer is caught in the Zephr window: the browser cannot finish there.
    byTestId("open-in-browser").hidden = !waiting || state.in_browser || state.redirect_caught;
    if (waiting) {
      $("waiting-sub").textContent = state.in_browser
        ? "Finish signing in in your browser, then click Allow."
        : "Sign in and click Allow in the Zephr window.";
      $("waiting-sub").innerHTML = $("waiting-sub").textContent.replace("Allow", "<b>Allow</b>");
      $("listening").textContent = !state.redirect_uri ? ""
        : state.redirect_caught ? `The Zephr window catches the redirect to ${state.redirect_uri} before it is sent`
        : `Listening for the redirect on ${state.redirect_uri}`;
      setStatus(state.in_browser ? "Waiting for you to click Allow in your browser..." : "Waiting for you to click Allow...");
    } else if (state.notice) {
      setStatus(state.notice);
    } else if (state.token) {
      setStatus("Signed in.");
    } else {
      setStatus(state.error ? "" : "Not signed in.");
    }
    // On a web view where the sign-in window cannot be isolated, say where sign-ins go instead.
    if (!waiting && state.browser_only) setStatus(`${byTestId("status-line").textContent} ${state.browser_only}`.trim());
    const hint = $("demo-hint");
    hint.hidden = !state.demo_hint;
    hint.textContent = state.demo_hint || "";
  }

  function renderToken(profile) {
    const token = state.token;
    const card = $("token-card");
    card.hidden = !token || !profile || formMode !== null;
    if (!token) {
      stopCountdown();
      return;
    }
    const el = byTestId("access-token");
    if (el.textContent !== token.access_token) {
      const prefixLength = Math.min(6, Math.floor(token.access_token.length / 4));
      const prefix = document.createElement("span");
      prefix.className = "prefix";
      prefix.textContent = token.access_token.slice(0, prefixLength);
      const rest = document.createElement("span");
      rest.className = "rest";
      rest.textContent = token.access_token.slice(prefixLength);
      el.replaceChildren(prefix, rest);
    }
    applyReveal();

    const scopes = byTestId("scopes");
    scopes.replaceChildren(
      ...(token.scopes.length ? token.scopes : ["(none reported)"]).map((s) =>
        Object.assign(document.createElement("span"), { className: "chip", textContent: s })
      )
    );
    byTestId("user-id").textContent = token.user_id || "(not reported)";
    $("expires-at").textContent = token.expires_at
      ? new Date(token.expires_at * 1000).toLocaleString()
      : "No expiry given";
    $("refresh-info").textContent = token.has_refresh ? "Available" : "None \u2014 sign in again when the token expires";
    byTestId("refresh").disabled = !token.has_refresh;
    byTestId("auto-refresh").checked = !!state.auto_refresh;
    byTestId("auto-refresh").disabled = !token.has_refresh;
    startCountdown();
  }

  function applyReveal() {
    const el = byTestId("access-token");
    el.classList.toggle("masked", !revealed);
    el.setAttribute("aria-label", revealed ? "Access token" : "Access token, hidden until revealed");
    const button = byTestId("reveal");
    button.setAttribute("aria-pressed", String(revealed));
    button.querySelector("span").textContent = revealed ? "Hide" : "Reveal";
  }

  function tick() {
    const token = state && state.token;
    const pill = byTestId("expires-in");
    if (!token) return;
    let text = formatLeft(null);
    let className = "pill none";
    if (token.expires_at !== null && token.expires_at !== undefined) {
      const left = token.expires_at - Date.now() / 1000;
      text = formatLeft(left);
      className = "pill" + (left <= 0 ? " expired" : left < 300 ? " warn" : "");
    }
    // Written only when it changes: the page is drawn again once a second, not at every tick.
    if (pill.textContent !== text) pill.textContent = text;
    if (pill.className !== className) pill.className = className;
  }

  function startCountdown() {
    tick();
    if (!countdownTimer) countdownTimer = setInterval(tick, 250);
  }

  function stopCountdown() {
    if (countdownTimer) clearInterval(countdownTimer);
    countdownTimer = null;
  }

  // --- profile form -------------------------------------------------------------------------
  function renderScopes(selected) {
    const box = $("f-scopes");
    box.replaceChildren(
      ...Object.entries(catalog.scopes).map(([scope, description]) => {
        const label = document.createElement("label");
        label.className = "check";
        const input = document.createElement("input");
        input.type = "checkbox";
        input.value = scope;
        input.name = "scopes";
        input.checked = selected.includes(scope);
        const text = document.createElement("span");
        const code = Object.assign(document.createElement("code"), { textContent: scope });
        text.append(code, " \u2014 ", Object.assign(document.createElement("span"), { className: "muted", textContent: description }));
        label.append(input, text);
        return label;
      })
    );
  }

  function clearFieldErrors() {
    document.querySelectorAll(".field-error").forEach((el) => {
      el.hidden = true;
      el.textContent = "";
    });
    document.querySelectorAll("#profile-form [aria-invalid]").forEach((el) => el.removeAttribute("aria-invalid"));
  }

  function showFieldError(field, message) {
    const el = $(`err-${field}`) || $("err-form");
    if (el.closest("details")) el.closest("details").open = true;
    el.textContent = message;
    el.hidden = false;
    const input = $(`f-${field}`);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  }

  function openForm(mode) {
    formMode = mode;
    clearFieldErrors();
    const profile = mode === "edit" ? current() : null;
    $("f-original").value = profile ? profile.name : "";
    $("f-name").value = profile ? profile.name : "";
    $("f-name").disabled = !!profile;
    $("f-site_url").value = profile ? profile.site_url : "";
    $("f-client_id").value = profile ? profile.client_id : "";
    $("f-client_secret").value = "";
    $("f-client_secret").placeholder = "";
    if (profile) {
      pywebview.api.secret_status(profile.name).then((res) => {
        if (formMode === "edit" && res && res.ok && res.has_secret && $("f-original").value === profile.name) {
          $("f-client_secret").placeholder = "Stored \u2014 leave blank to keep it";
        }
      });
    }
    $("f-redirect_uri").value = profile ? profile.redirect_uri : catalog.default_redirect_uri;
    $("f-token_url").value = profile ? profile.token_url : catalog.default_token_url;
    $("f-keep_site_session").checked = profile ? !!profile.keep_site_session : false;
    renderScopes(profile ? profile.scopes : catalog.default_scopes);
    $("f-other_scopes").value = profile ? profile.scopes.filter((s) => !(s in catalog.scopes)).join(" ") : "";
    hideCheck();
    $("advanced").open = false;
    updateRedirectHint();
  }

  function renderFormChrome() {
    showAbout();
    const profiles = (state && state.profiles) || [];
    const editing = formMode === "edit";
    $("settings-heading").textContent = editing ? `Profile \u201c${$("f-original").value}\u201d` : profiles.length ? "Add a Zephr site" : "Connect a Zephr site";
    $("settings-intro").hidden = editing;
    $("demo-tip").hidden = profiles.length > 0;
    $("close-settings").hidden = profiles.length === 0;
    $("cancel-form").hidden = profiles.length === 0;
    $("add-profile").hidden = !editing;
    $("remove-profile").hidden = !editing;
  }

  function openSettings() {
    if (formMode === null) {
      openForm(current() ? "edit" : "add");
      render(state);
    }
    $("f-site_url").focus();
  }

  let aboutShown = false;
  async function showAbout() {
    if (aboutShown) return;
    const result = await call("about");
    if (!result.ok) return;
    aboutShown = true;
    const rows = [
      ["Version", `Zephr Desktop ${result.version}`],
      ["Profiles", result.config_file],
      ["Data", result.data_dir],
      ["Secrets", result.secret_store],
    ];
    $("about").replaceChildren(
      ...rows.flatMap(([label, value]) => [
        Object.assign(document.createElement("dt"), { textContent: label }),
        Object.assign(document.createElement("dd"), { textContent: value }),
      ])
    );
  }

  function closeForm() {
    formMode = null;
    render(state);
    byTestId("settings").focus();
  }

  function updateRedirectHint() {
    const uri = $("f-redirect_uri").value.trim() || catalog.default_redirect_uri;
    $("redirect-hint").textContent = uri;
    $("redirect-how").textContent = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):/i.test(uri)
      ? "The app listens for the redirect on this computer."
      : "The app's window catches the redirect to this address before it is sent (the code never reaches that " +
        "site); with the command line, paste the final URL from the browser's address bar.";
  }

  // What the form says, as save_profile and check_profile take it.
  function formValues() {
    const checked = [...document.querySelectorAll('#f-scopes input[type="checkbox"]:checked')].map((i) => i.value);
    const other = $("f-other_scopes").value.split(/\s+/).filter((s) => s && !checked.includes(s));
    return {
      original_name: $("f-original").value || null,
      name: $("f-name").value.trim(),
      site_url: $("f-site_url").value.trim(),
      client_id: $("f-client_id").value.trim(),
      client_secret: $("f-client_secret").value,
      redirect_uri: $("f-redirect_uri").value.trim(),
      token_url: $("f-token_url").value.trim(),
      scopes: [...checked, ...other],
      keep_site_session: $("f-keep_site_session").checked,
    };
  }

  function hideCheck() {
    const out = $("check-result");
    out.hidden = true;
    out.replaceChildren();
  }

  const CHECK_MARKS = { ok: "\u2713", problem: "\u2717", "not checked": "\u2013" };

  async function checkForm() {
    clearFieldErrors();
    const out = $("check-result");
    const button = $("check-profile");
    button.disabled = true;
    out.hidden = false;
    out.classList.remove("failed");
    out.replaceChildren(Object.assign(document.createElement("li"), { textContent: "Checking the site, the client and the redirect URI..." }));
    const result = await call("check_profile", formValues());
    button.disabled = false;
    if (!result.ok) {
      hideCheck();
      showFieldError(result.field || "form", result.error);
      return;
    }
    out.classList.toggle("failed", !result.all_ok);
    out.replaceChildren(
      ...result.findings.map((finding) => {
        const li = document.createElement("li");
        li.className = finding.status === "not checked" ? "skipped" : finding.status;
        li.dataset.check = finding.check;
        const mark = Object.assign(document.createElement("span"), { className: "mark", textContent: CHECK_MARKS[finding.status] || "?" });
        mark.setAttribute("aria-label", finding.status);
        li.append(mark, Object.assign(document.createElement("span"), { textContent: finding.message }));
        return li;
      })
    );
    out.scrollIntoView({ block: "nearest" });
  }

  async function submitForm(event) {
    event.preventDefault();
    clearFieldErrors();
    hideCheck();
    const form = formValues();
    const button = $("save-profile");
    button.disabled = true;
    const result = await call("save_profile", form);
    button.disabled = false;
    $("f-client_secret").value = "";
    if (!result.ok) {
      showFieldError(result.field || "form", result.error);
      return;
    }
    formMode = null;
    render(result);
    byTestId("sign-in").focus();
  }

  // --- actions ---------------------------------------------------------------------------------
  async function act(method, ...args) {
    const result = await call(method, ...args);
    if (result.ok && result.profiles) render(result);
    else if (!result.ok) showError(result.error);
    return result;
  }

  function flashCopied(button, ok) {
    const label = button.dataset.label || button.textContent;
    clearTimeout(copyTimers.get(button));
    button.textContent = ok ? "Copied" : label;
    button.classList.toggle("copied", ok);
    copyTimers.set(
      button,
      setTimeout(() => {
        button.textContent = label;
        button.classList.remove("copied");
      }, 1600)
    );
  }

  function resetTokenView() {
    revealed = false;
    byTestId("test-result").hidden = true;
  }

  // The keyboard's copy: always the whole token, through the same path as the Copy token button.
  function copyToken() {
    copyKind(byTestId("copy-token"));
  }

  function onKey(e) {
    const mod = (e.ctrlKey || e.metaKey) && !e.altKey;
    const isC = e.key.toLowerCase() === "c" || e.code === "KeyC";
    if (mod && e.shiftKey && isC) {
      e.preventDefault(); // from anywhere in the window, whatever has the focus
      copyToken();
    } else if (mod && !e.shiftKey && isC && document.activeElement === byTestId("access-token")) {
      e.preventDefault(); // not the (masked) selection: the token itself
      copyToken();
    } else if (mod && !e.shiftKey && (e.key === "," || e.code === "Comma")) {
      e.preventDefault();
      if (state) openSettings();
    } else if (e.key === "Escape") {
      if (state && state.signing_in) act("cancel_sign_in");
      else if (formMode !== null && state && state.profiles.length) closeForm();
    }
  }

  async function copyKind(button) {
    const result = await call("copy", button.dataset.kind);
    if (!result.ok) {
      showError(result.error);
      return;
    }
    flashCopied(button, true);
    const what = { token: "the token", header: "the Authorization header", curl: "a curl command", export: "an export line" }[result.kind];
    const clears = result.clear_after ? ` The clipboard clears in ${Math.round(result.clear_after / 60)} min.` : "";
    setStatus(`Copied ${what}.${clears}`);
  }

  function wire() {
    byTestId("sign-in").addEventListener("click", async () => {
      byTestId("test-result").hidden = true;
      const result = await act("sign_in");
      if (result.ok) byTestId("cancel").focus();
    });
    byTestId("cancel").addEventListener("click", () => act("cancel_sign_in"));
    byTestId("open-in-browser").addEventListener("click", () => act("open_in_browser"));
    byTestId("reveal").addEventListener("click", () => {
      revealed = !revealed;
      applyReveal();
    });
    document.querySelectorAll(".copy-row .copy").forEach((button) => button.addEventListener("click", () => copyKind(button)));
    byTestId("refresh").addEventListener("click", async () => {
      const button = byTestId("refresh");
      button.disabled = true;
      setStatus("Refreshing...");
      await act("refresh");
      button.disabled = false;
    });
    byTestId("auto-refresh").addEventListener("change", (e) => act("set_auto_refresh", e.target.checked));
    byTestId("test-token").addEventListener("click", async () => {
      const out = byTestId("test-result");
      const button = byTestId("test-token");
      button.disabled = true;
      out.hidden = false;
      out.classList.remove("failed");
      out.textContent = "Calling the Public API...";
      const result = await call("test_token");
      button.disabled = false;
      if (!result.ok) {
        out.classList.add("failed");
        out.textContent = result.error;
        return;
      }
      out.classList.toggle("failed", !result.all_ok);
      out.textContent = Object.entries(result.results)
        .map(([label, body]) => `${label}\n${JSON.stringify(body, null, 2)}`)
        .join("\n\n");
    });
    byTestId("sign-out").addEventListener("click", async () => {
      byTestId("test-result").hidden = true;
      revealed = false;
      await act("sign_out");
    });
    byTestId("settings").addEventListener("click", () => {
      if (formMode !== null && state.profiles.length) closeForm();
      else openSettings();
    });
    byTestId("profile-select").addEventListener("change", async (e) => {
      resetTokenView();
      await act("select_profile", e.target.value);
    });

    $("profile-form").addEventListener("submit", submitForm);
    $("check-profile").addEventListener("click", checkForm);
    $("f-redirect_uri").addEventListener("input", updateRedirectHint);
    $("copy-redirect").addEventListener("click", async () => {
      const result = await call("copy_text", $("redirect-hint").textContent);
      if (result.ok) flashCopied($("copy-redirect"), true);
      else showError(result.error);
    });
    $("add-profile").addEventListener("click", () => {
      openForm("add");
      render(state);
      $("f-site_url").focus();
    });
    $("close-settings").addEventListener("click", closeForm);
    $("cancel-form").addEventListener("click", closeForm);
    $("remove-profile").addEventListener("click", async () => {
      const name = $("f-original").value;
      if (!name || !window.confirm(`Remove profile \u201c${name}\u201d with its tokens and client secret?`)) return;
      formMode = null;
      await act("remove_profile", name);
    });
    document.addEventListener("keydown", onKey);
    // The spinner rests while the person is in another window (see style.css).
    window.addEventListener("blur", () => document.body.classList.add("blurred"));
    window.addEventListener("focus", () => document.body.classList.remove("blurred"));
    byTestId("access-token").addEventListener("copy", (e) => {
      e.preventDefault(); // a menu's Copy on the token: the whole token, not the selection
      copyToken();
    });
  }

  // --- start -------------------------------------------------------------------------------------
  async function start() {
    if (bridgeReady) return;
    bridgeReady = true;
    if (catalog) markReady(); // already drawn from the state Python handed in (window.zephrFirst)
    else first(await call("init"));
  }

  // The page's first state: handed in by Python as the page loads (window.zephrFirst), or asked for with
  // init() once the bridge is ready.
  function first(result) {
    if (catalog) return;
    if (!result || !result.ok) {
      document.getElementById("main").classList.remove("loading");
      showError(result && result.error);
      return;
    }
    catalog = result.catalog;
    render(result);
    markReady();
  }

  // Ready: drawn, and its buttons reach Python.
  function markReady() {
    if (catalog && bridgeReady) document.body.dataset.ready = "true";
  }

  wire();
  if (window.zephrFirst) {
    const seed = window.zephrFirst;
    delete window.zephrFirst;
    first(seed);
  }
  window.addEventListener("pywebviewready", start);
  // The event may already have fired if the bridge was injected before this script ran.
  if (window.pywebview && window.pywebview.api && window.pywebview.api.init) start();
})();
