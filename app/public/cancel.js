// "No, take me back" on the delete confirmations, as Django's cancel.js: history.back(), to the page
// as the user left it (the posts ticked on the changelist, an edit not yet saved). Django's link is
// href="#", which does nothing in a tab with nothing to go back to; ours then follows its href, as it
// does where the page before was another site's (the Navigation API counts only this site's pages).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const link of document.querySelectorAll(".cancel-link")) {
    link.addEventListener("click", (event) => {
      if (!(window.navigation?.canGoBack ?? window.history.length > 1)) return;
      event.preventDefault();
      window.history.back();
    });
  }
});
