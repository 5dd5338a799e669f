// The layout's header: the server renders who is signed in; this wires its Log out button. Loaded on every page.

import { api } from "./api.js";

const logout = document.getElementById("logout");
logout?.addEventListener("click", async () => {
  logout.disabled = true;
  try {
    await api("/api/sessions", { method: "DELETE" });
  } catch {
    // Going back to the directory shows whether the session is really gone.
  }
  location.assign("/");
});
