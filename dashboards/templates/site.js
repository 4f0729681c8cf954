/* effbench leaderboard page: sorting, filtering, paging and Dynascore re-ranking.
 *
 * EB.fmt mirrors dashboards/src/format.rs and EB.dynascore mirrors
 * harness/src/analysis/dynascore.rs line by line (same operations in the same order), so the
 * browser ranks exactly as the Rust code does; a browser test checks both agree to 1e-9.
 * User-provided text is only ever inserted with textContent, never as HTML. */
(function () {
  'use strict';
  var EB = (window.EB = window.EB || {});

  // ---------------------------------------------------------------- number formatting
  // Rust rounds exact decimal ties to even; toFixed/toExponential round them away from zero.
  function isTie(rest) { return /^50*$/.test(rest); }
  function fixed(x, d) {
    var s = x.toFixed(d);
    var full = Math.abs(x).toFixed(Math.min(100, d + 70));
    var dot = full.indexOf('.');
    if (isTie(full.slice(dot + 1 + d))) {
      var trunc = d > 0 ? full.slice(0, dot + 1 + d) : full.slice(0, dot);
      if (+trunc.charAt(trunc.length - 1) % 2 === 0) return (x < 0 ? '-' : '') + trunc;
    }
    return s;
  }
  function expo2(x) {
    var s = x.toExponential(2).replace('e+', 'e');
    var full = Math.abs(x).toExponential(60).split('e');
    if (isTie(full[0].slice(4))) {
      var t = full[0].slice(0, 4);
      if (+t.charAt(3) % 2 === 0) return (x < 0 ? '-' : '') + t + 'e' + (+full[1]);
    }
    return s;
  }
  function sig3(v) {
    var a = Math.abs(v);
    if (a === 0) return '0';
    if (!(a >= 1e-3 && a < 1e6)) return expo2(v);
    if (a >= 100) return fixed(v, 0);
    if (a >= 10) return fixed(v, 1);
    if (a >= 1) return fixed(v, 2);
    return fixed(v, Math.max(2 - Math.floor(Math.log10(a)), 0));
  }
  var UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  function bytes(v) {
    var x = v, i = 0;
    while (Math.abs(x) >= 1024 && i < UNITS.length - 1) { x /= 1024; i++; }
    return i === 0 ? fixed(x, 0) + ' B' : sig3(x) + ' ' + UNITS[i];
  }
  function count(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return sig3(v / 1e9) + 'G';
    if (a >= 1e6) return sig3(v / 1e6) + 'M';
    if (a >= 1e3) return sig3(v / 1e3) + 'k';
    return fixed(v, 0);
  }
  EB.sig3 = sig3;
  EB.fmt = function (v, unit) {
    if (typeof v !== 'number' || !isFinite(v)) return '-';
    if (unit === 'bytes') return bytes(v);
    if (unit === 'count') return count(v);
    return sig3(v);
  };

  // ---------------------------------------------------------------- Dynascore
  // f64::total_cmp for the finite values used here: numeric order, -0 before +0.
  function totalCmp(a, b) {
    if (a < b) return -1;
    if (a > b) return 1;
    if (a === 0 && b === 0) {
      var na = Object.is(a, -0), nb = Object.is(b, -0);
      return na === nb ? 0 : na ? -1 : 1;
    }
    return 0;
  }
  /* metrics: [{name, better: 'lower'|'higher', weight, offset}], performance first;
   * rows: [[value per metric]]. Returns {rows: [{index, dynascore, rank}] best first,
   * amrs, weights}; throws with the Rust error's message. */
  EB.dynascore = function (metrics, rows) {
    var n = rows.length, m = metrics.length, i, k;
    if (n < 2) throw new Error('Dynascore needs at least 2 models, got ' + n);
    for (i = 0; i < n; i++) {
      if (rows[i].length !== m) throw new Error('row ' + i + ' has ' + rows[i].length + ' values but there are ' + m + ' metrics');
      for (k = 0; k < m; k++) {
        var v = rows[i][k];
        if (typeof v !== 'number' || !isFinite(v)) throw new Error('row ' + i + ", metric '" + metrics[k].name + "': value is not a finite number");
      }
    }
    var wsum = 0;
    for (k = 0; k < m; k++) wsum += metrics[k].weight;
    for (k = 0; k < m; k++) {
      var w = metrics[k].weight;
      if (typeof w !== 'number' || !isFinite(w) || w < 0) throw new Error('weights must be finite, >= 0 and not all 0');
    }
    if (!(wsum > 0)) throw new Error('weights must be finite, >= 0 and not all 0');
    var weights = metrics.map(function (x) { return x.weight / wsum; });
    var u = rows.map(function (r) {
      return r.map(function (v, j) { return (metrics[j].better === 'higher' ? 1 : -1) * v + metrics[j].offset; });
    });
    var order = [];
    for (i = 0; i < n; i++) order.push(i);
    order.sort(function (a, b) { return totalCmp(u[a][0], u[b][0]); });
    var maxPerf = 0;
    for (i = 0; i < n; i++) maxPerf = Math.max(maxPerf, Math.abs(u[i][0]));
    var pairs = [];
    for (i = 0; i + 1 < n; i++) {
      var a = order[i], b = order[i + 1];
      if (Math.abs(u[b][0] - u[a][0]) > 1e-4 * maxPerf) pairs.push([a, b]);
    }
    if (pairs.length === 0) throw new Error("the performance metric '" + metrics[0].name + "' is the same for every model, so no trade-off rate can be measured");
    var amrs = [];
    for (k = 0; k < m; k++) amrs.push(1);
    for (k = 1; k < m; k++) {
      var rates = 0;
      for (var p = 0; p < pairs.length; p++) {
        var pa = pairs[p][0], pb = pairs[p][1];
        rates += Math.abs(u[pb][k] - u[pa][k]) / (u[pb][0] - u[pa][0]);
      }
      amrs[k] = rates / pairs.length;
      if (amrs[k] === 0 && weights[k] > 0) throw new Error("metric '" + metrics[k].name + "' does not change between models (AMRS = 0); drop it or give it weight 0");
    }
    var scores = u.map(function (r) {
      var s = 0;
      for (var j = 0; j < m; j++) if (weights[j] > 0) s += weights[j] * r[j] / Math.abs(amrs[j]);
      return s;
    });
    var idx = [];
    for (i = 0; i < n; i++) idx.push(i);
    idx.sort(function (x, y) { return totalCmp(scores[y], scores[x]) || x - y; });
    return {
      rows: idx.map(function (j) {
        var better = 0;
        for (var q = 0; q < n; q++) if (scores[q] > scores[j]) better++;
        return { index: j, dynascore: scores[j], rank: 1 + better };
      }),
      amrs: amrs,
      weights: weights
    };
  };

  // ---------------------------------------------------------------- the leaderboard page
  var data = null, loading = null, waiting = [];
  var state = { sort: 'rank', desc: false, filter: '', frontOnly: false, page: 0, size: 100 };

  EB.withData = function (cb) {
    if (data) return cb(data);
    waiting.push(cb);
    if (loading) return;
    var inline = document.getElementById('eb-data');
    if (inline) return ready(JSON.parse(inline.textContent));
    var src = document.getElementById('eb-data-src');
    if (!src) return;
    loading = document.createElement('script');
    loading.src = JSON.parse(src.textContent).src;
    loading.onload = function () { ready(window.EB_DATA); };
    loading.onerror = function () { message('could not load ' + loading.src); };
    document.body.appendChild(loading);
  };
  function ready(d) {
    data = EB.data = d;
    state.size = d.page_size;
    d.rows.forEach(function (r, i) { r.i = i; });
    var cbs = waiting; waiting = [];
    cbs.forEach(function (cb) { cb(d); });
  }
  function message(t) { var el = document.getElementById('dyna-msg'); if (el) el.textContent = t; }

  function numericOrText(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    if (String(x) === a && String(y) === b) return x - y;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function sortValue(r, key) {
    if (key === 'rank') return r.rank;
    if (key === 'score') return r.score;
    if (key === 'front') return r.f ? 0 : 1;
    if (key === 'key') return r.k;
    if (key === 'model') return r.m;
    if (key === 'machine') return data.machines[r.h];
    if (key === 'date') return r.d;
    if (key === 'status') return r.s;
    if (key.indexOf('a:') === 0) return r.a[+key.slice(2)];
    if (key.indexOf('v:') === 0) return r.v[+key.slice(2)];
    return null;
  }
  // First click on a header: best first (metrics by their direction, score high first).
  function defaultDesc(key) {
    if (key === 'score') return true;
    if (key.indexOf('v:') === 0) return data.cols[+key.slice(2)].better === 'higher';
    return false;
  }
  function visibleRows() {
    var terms = state.filter.toLowerCase().split(/\s+/).filter(Boolean);
    var rows = data.rows.filter(function (r) {
      if (state.frontOnly && !r.f) return false;
      if (!terms.length) return true;
      var hay = (data.axes.map(function (a, j) { return a + '=' + r.a[j]; }).join(' ') + ' ' + r.m + ' ' +
        data.machines[r.h] + ' ' + r.d + ' ' + r.s + ' ' + r.k).toLowerCase();
      return terms.every(function (t) { return hay.indexOf(t) >= 0; });
    });
    var key = state.sort, sign = state.desc ? -1 : 1;
    rows.sort(function (a, b) {
      var x = sortValue(a, key), y = sortValue(b, key);
      var xn = x === null || x === undefined, yn = y === null || y === undefined;
      if (xn || yn) return xn === yn ? a.i - b.i : xn ? 1 : -1;   // missing values last
      var c = typeof x === 'number' ? (x < y ? -1 : x > y ? 1 : 0) : numericOrText(String(x), String(y));
      return c * sign || a.i - b.i;
    });
    return rows;
  }
  function td(text, cls) {
    var el = document.createElement('td');
    if (cls) el.className = cls;
    el.textContent = text;
    return el;
  }
  function render() {
    var table = document.getElementById('leaderboard');
    if (!table || !data) return;
    var rows = visibleRows();
    var size = state.size > 0 ? state.size : rows.length || 1;
    var pages = Math.max(1, Math.ceil(rows.length / size));
    state.page = Math.min(state.page, pages - 1);
    var start = state.page * size, shown = rows.slice(start, start + size);
    var hasDyna = !!data.dyna;
    var body = document.createElement('tbody');
    shown.forEach(function (r) {
      var tr = document.createElement('tr');
      tr.setAttribute('data-key', r.k);
      if (r.f) tr.className = 'front';
      if (hasDyna) {
        tr.appendChild(td(r.rank === null || r.rank === undefined ? '-' : String(r.rank), 'num'));
        var s = td(typeof r.score === 'number' ? sig3(r.score) : '-', 'num');
        s.setAttribute('data-score', typeof r.score === 'number' ? String(r.score) : '');
        tr.appendChild(s);
      }
      tr.appendChild(td(r.f ? '★' : '', 'star'));
      var link = document.createElement('a');
      link.href = '../runs/' + encodeURIComponent(r.k) + '.html';
      link.textContent = r.k.slice(0, 8);
      var cell = document.createElement('td');
      cell.appendChild(link);
      tr.appendChild(cell);
      r.a.forEach(function (a) { tr.appendChild(td(a)); });
      tr.appendChild(td(r.m));
      r.v.forEach(function (v, j) { tr.appendChild(td(EB.fmt(v, data.cols[j].unit), 'num')); });
      var st = td(r.s, 'status-' + r.s);
      if (r.why) st.title = r.why;
      tr.appendChild(st);
      tr.appendChild(td(data.machines[r.h]));
      tr.appendChild(td(r.d));
      body.appendChild(tr);
    });
    table.replaceChild(body, table.tBodies[0]);
    var ths = table.tHead.rows[0].cells;
    for (var j = 0; j < ths.length; j++) {
      var on = ths[j].getAttribute('data-sort') === state.sort;
      ths[j].classList.toggle('sorted', on);
      ths[j].classList.toggle('desc', on && state.desc);
      ths[j].classList.toggle('asc', on && !state.desc);
    }
    var countEl = document.getElementById('count');
    if (countEl) countEl.textContent = rows.length ? 'rows ' + (start + 1) + '–' + (start + shown.length) + ' of ' + rows.length +
      (rows.length < data.rows.length ? ' (filtered from ' + data.rows.length + ')' : '') : 'no rows match';
  }
  EB.render = render;

  // Dynascore: weights from the sliders, scores into the rows, then re-render.
  function rerank() {
    var d = data.dyna;
    if (!d) return;
    var metrics = d.metrics.map(function (m) {
      var input = document.getElementById('w-' + d.metrics.indexOf(m));
      return { name: m.name, better: m.better, weight: input ? parseFloat(input.value) : m.weight, offset: m.offset };
    });
    d.metrics.forEach(function (m, k) {
      var out = document.getElementById('wv-' + k);
      if (out) out.textContent = String(metrics[k].weight);
    });
    var table = d.rows.map(function (i) { return d.metrics.map(function (m) { return data.rows[i].v[m.col]; }); });
    data.rows.forEach(function (r) { r.rank = null; r.score = null; });
    try {
      var res = EB.dynascore(metrics, table);
      res.rows.forEach(function (x) {
        var r = data.rows[d.rows[x.index]];
        r.rank = x.rank;
        r.score = x.dynascore;
      });
      res.amrs.forEach(function (a, k) {
        var el = document.getElementById('amrs-' + k);
        if (el) el.textContent = 'AMRS ' + sig3(a) + ' · weight ' + sig3(100 * res.weights[k]) + ' %';
      });
      message('');
    } catch (e) {
      message(e.message);
    }
    render();
  }
  EB.rerank = rerank;

  function init() {
    var table = document.getElementById('leaderboard');
    if (!table) return;
    var ths = table.tHead.rows[0].cells;
    for (var j = 0; j < ths.length; j++) {
      ths[j].addEventListener('click', function (ev) {
        var key = ev.currentTarget.getAttribute('data-sort');
        EB.withData(function () {
          if (state.sort === key) state.desc = !state.desc;
          else { state.sort = key; state.desc = defaultDesc(key); }
          state.page = 0;
          render();
        });
      });
    }
    var on = function (id, ev, fn) { var el = document.getElementById(id); if (el) el.addEventListener(ev, fn); };
    on('filter', 'input', function (ev) { var v = ev.target.value; EB.withData(function () { state.filter = v; state.page = 0; render(); }); });
    on('front-only', 'change', function (ev) { var v = ev.target.checked; EB.withData(function () { state.frontOnly = v; state.page = 0; render(); }); });
    on('page-size', 'change', function (ev) { var v = +ev.target.value; EB.withData(function () { state.size = v; state.page = 0; render(); }); });
    on('prev', 'click', function () { EB.withData(function () { state.page = Math.max(0, state.page - 1); render(); }); });
    on('next', 'click', function () { EB.withData(function () { state.page += 1; render(); }); });
    var sliders = document.querySelectorAll('input[type=range][data-i]');
    for (var s = 0; s < sliders.length; s++) sliders[s].addEventListener('input', function () { EB.withData(rerank); });
    on('dyna-reset', 'click', function () {
      EB.withData(function (d) {
        if (!d.dyna) return;
        d.dyna.metrics.forEach(function (m, k) { var el = document.getElementById('w-' + k); if (el) el.value = m.weight; });
        rerank();
      });
    });
    if (!document.getElementById('eb-data-src')) EB.withData(function (d) { if (d.dyna) rerank(); else render(); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
