// MathJax 2's `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`, on top of MathJax 3.
//
// @jupyter-widgets/html-manager 1.x typesets widget labels with the MathJax 2 call above; the
// book loads MathJax 3 (npm mathjax@3, served by this site), which has no `Hub`, so every widget
// label threw "Cannot read properties of undefined (reading 'Queue')". This keeps a `Hub` on
// whatever object `window.MathJax` is (Sphinx's configuration object first, then MathJax 3
// itself, which replaces it when it loads) and forwards typesetting to `typesetPromise`.
// `Hub` is non-enumerable so that MathJax 3 never sees it as a configuration key.
// Copied into _build/static/widgets/ by scripts/prepare_static.py.
(function () {
  "use strict";
  function typeset(element) {
    var mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise && mj.typesetPromise) {
      mj.startup.promise
        .then(function () { return mj.typesetPromise(element ? [element] : undefined); })
        .catch(function (err) { console.warn("MathJax typeset failed", err); });
    } else {
      // MathJax 3 is loaded with `defer`: try again once the page has loaded
      window.addEventListener("load", function () { typeset(element); }, { once: true });
    }
  }
  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        if (typeof job === "function") {
          job();
        } else if (Array.isArray(job) && job[0] === "Typeset") {
          typeset(job[2]);
        }
      }
    },
  };
  function patch(mj) {
    if (mj && typeof mj === "object" && !Object.prototype.hasOwnProperty.call(mj, "Hub")) {
      Object.defineProperty(mj, "Hub", { value: hub, enumerable: false, configurable: true });
    }
    return mj;
  }
  var current = patch(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    enumerable: true,
    get: function () { return current; },
    set: function (value) { current = patch(value); },
  });
})();
