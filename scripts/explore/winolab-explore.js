/* winolab's widgets in the static book, with no kernel and no network.
 *
 * A widget cell's HTML output is <div class="winolab-explore" data-widget="NAME">. This script
 * loads _static/explore/NAME.js (written by scripts/precompute_widgets.py from the same
 * compute_* and viz.plot_* functions the Jupyter widget calls), draws the controls, and on
 * every change shows the figure and the numbers precomputed for that setting.
 */
(function () {
  "use strict";
  var base = new URL(".", document.currentScript.src).href;
  var specs = {};
  var waiting = {};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function build(root, spec) {
    root.textContent = "";
    var controls = el("div", "winolab-explore-controls");
    var inputs = spec.controls.map(function (c) {
      var row = el("label", "winolab-explore-control");
      row.appendChild(el("span", "winolab-explore-description", c.description));
      var input, readout = null;
      if (c.kind === "slider") {
        input = el("input");
        input.type = "range";
        input.min = 0;
        input.max = c.labels.length - 1;
        input.step = 1;
        input.value = c.labels.indexOf(c["default"]);
        readout = el("output", "winolab-explore-readout");
      } else {
        input = el("select");
        c.labels.forEach(function (l) {
          var o = el("option", null, l);
          o.value = l;
          input.appendChild(o);
        });
        input.value = c["default"];
      }
      input.setAttribute("data-control", c.name);
      row.appendChild(input);
      if (readout) row.appendChild(readout);
      controls.appendChild(row);
      return { c: c, input: input, readout: readout };
    });
    var figure = el("img", "winolab-explore-figure");
    var nums = el("p", "winolab-explore-numbers");
    root.appendChild(controls);
    root.appendChild(figure);
    root.appendChild(nums);
    if (spec.note) root.appendChild(el("p", "winolab-explore-note", spec.note));

    function label(i) {
      return i.c.kind === "slider" ? i.c.labels[Number(i.input.value)] : i.input.value;
    }
    function update() {
      var key = inputs.map(function (i) {
        var l = label(i);
        if (i.readout) i.readout.textContent = l;
        return i.c.name + "=" + l;
      }).join(",");
      var state = spec.states[key];
      root.setAttribute("data-state", key);
      nums.textContent = "";
      nums.classList.toggle("winolab-explore-error", !!state.error);
      if (state.error) {
        figure.hidden = true;
        figure.removeAttribute("src");
        nums.textContent = state.error;
        return;
      }
      figure.hidden = false;
      figure.src = base + state.image;
      figure.alt = spec.name + " at " + key;
      state.numbers.forEach(function (n) {
        var s = el("span", "winolab-explore-number", n[0] + " = " + n[2]);
        s.setAttribute("data-field", n[0]);
        s.setAttribute("data-value", JSON.stringify(n[1]));
        nums.appendChild(s);
        nums.appendChild(document.createTextNode(" "));
      });
    }
    inputs.forEach(function (i) {
      i.input.addEventListener("input", update);
      i.input.addEventListener("change", update);
    });
    update();
    root.classList.add("winolab-explore-ready");
  }

  window.winolabExplore = {
    register: function (spec) {
      specs[spec.name] = spec;
      (waiting[spec.name] || []).forEach(function (root) { build(root, spec); });
      delete waiting[spec.name];
    }
  };

  document.querySelectorAll(".winolab-explore[data-widget]").forEach(function (root) {
    var name = root.getAttribute("data-widget");
    if (specs[name]) return build(root, specs[name]);
    if (!waiting[name]) {
      waiting[name] = [];
      var s = el("script");
      s.src = base + encodeURIComponent(name) + ".js";
      s.onerror = function () {
        (waiting[name] || []).forEach(function (r) {
          r.textContent = "The precomputed states of this widget (" + s.src + ") did not load.";
        });
      };
      document.head.appendChild(s);
    }
    waiting[name].push(root);
  });
})();
