/* presence widget: a live "N people viewing" badge and a small JS API.
 * <script src="https://presence.example.com/widget.js" data-room="docs-intro" async></script>
 * Attributes: data-room, data-label, data-label-one, data-theme (light|dark),
 * data-color, data-position (inline|bottom-right|bottom-left), data-target,
 * data-badge="false" (API only), data-share="false" (one stream per tab).
 * API: presence.on/off(event, fn) for the tag's room; presence.room(name)
 * -> {name, count, presence, state, leader, on, off, close}. Events: 'count',
 * 'presence', 'state' ('connecting'|'live'|'reconnecting'|'error'). */
(function () {
  'use strict';
  var script = document.currentScript ||
    [].slice.call(document.querySelectorAll('script[src*="widget.js"]')).pop();
  if (!script) return;
  var src = new URL(script.src, location.href);
  var base = src.origin + src.pathname.replace(/\/[^/]*$/, '');
  var data = script.dataset;
  var ROOM = /^[A-Za-z0-9._-]{1,64}$/;
  var EVENTS = ['count', 'presence', 'state'];
  function listeners() { var m = {}; EVENTS.forEach(function (e) { m[e] = []; }); return m; }
  if (window.presence && window.presence._tag) { window.presence._tag(script, base); return; }

  var sharing = !!(navigator.locks && window.BroadcastChannel) && data.share !== 'false' &&
    new URLSearchParams(location.search).get('presence-share') !== '0';
  var visitor = visitorId();
  var rooms = {}; // base + ' ' + name -> room

  function visitorId() {
    var id = '', b = new Uint8Array(16), key = 'presence:visitor';
    crypto.getRandomValues(b);
    var fresh = [].map.call(b, function (x) { return (x < 16 ? '0' : '') + x.toString(16); }).join('');
    try {
      id = localStorage.getItem(key) || '';
      if (!/^[0-9a-f]{32}$/.test(id)) { localStorage.setItem(key, fresh); id = localStorage.getItem(key); }
    } catch (e) { /* storage blocked: a per-page id */ }
    return /^[0-9a-f]{32}$/.test(id || '') ? id : fresh;
  }

  function call(fn, v) {
    try { fn(v); } catch (e) { setTimeout(function () { throw e; }); }
  }

  function join(b, name) {
    name = String(name == null ? 'lobby' : name);
    var r = rooms[b + ' ' + name];
    if (r) return r;
    var ls = listeners(), es = null, timer = 0, ch = null;
    var abort = null, release = null, fails = 0, warned = false;
    var key = 'presence:' + b + ':' + name;
    var url = b + (name === 'lobby' ? '/events' : '/rooms/' + encodeURIComponent(name) + '/events') +
      '?visitor=' + visitor;
    r = rooms[b + ' ' + name] = {
      name: name, count: null, presence: null, state: 'connecting', error: null, leader: false, closed: false,
      on: function (ev, fn) {
        if (EVENTS.indexOf(ev) < 0 || typeof fn !== 'function') throw new TypeError('presence: on(count|presence|state, fn)');
        ls[ev].push(fn);
        var v = r[ev];
        if (v !== null && !r.closed) call(fn, v);
        return r;
      },
      off: function (ev, fn) {
        var i = ls[ev] ? ls[ev].indexOf(fn) : -1;
        if (i >= 0) ls[ev].splice(i, 1);
        return r;
      },
      close: function () {
        if (r.closed) return;
        r.closed = true;
        delete rooms[b + ' ' + name];
        clearTimeout(timer);
        if (es) es.close();
        if (abort) abort.abort();
        if (release) release();
        if (ch) ch.close();
        r.leader = false;
        ls = listeners();
      }
    };

    // set records a new value, tells listeners, and (leader) relays it to other tabs.
    function set(k, v) {
      if (r.closed) return;
      if (k === 'presence' ? JSON.stringify(v) === JSON.stringify(r.presence) : r[k] === v) return;
      r[k] = v;
      if (r.leader && ch) ch.postMessage({ k: k, v: v, e: r.error });
      ls[k].slice().forEach(function (fn) { call(fn, v); });
    }

    function warn(why) {
      if (warned) return;
      warned = true;
      console.warn('presence: room "' + name + '" at ' + b + ': ' + why);
    }

    function open() {
      if (r.closed) return;
      set('state', 'connecting');
      var s = es = new EventSource(url);
      s.onopen = function () { fails = 0; r.error = null; set('state', 'live'); };
      s.addEventListener('user count', function (e) {
        var n = Number(e.data);
        if (Number.isSafeInteger(n) && n >= 0) { set('count', n); set('state', 'live'); }
      });
      s.addEventListener('presence', function (e) {
        var p;
        try { p = JSON.parse(e.data); } catch (err) { return; }
        if (!p || typeof p.people !== 'number') return;
        set('presence', { room: p.room, people: p.people, connections: p.connections });
        set('count', p.people);
      });
      s.onerror = function () {
        if (s !== es) return;
        if (s.readyState !== EventSource.CLOSED) { set('state', 'reconnecting'); return; }
        s.close();
        fails++;
        diagnose(function (status, why) {
          // 5 s, as asked; a refusal the server will repeat (4xx) or a long outage backs off to 60 s.
          var wait = status >= 400 && status < 500 && status !== 408 && status !== 429 ? 60 :
            Math.min(60, 5 * Math.pow(2, Math.max(0, fails - 3)));
          r.error = why;
          set('state', 'error');
          warn(why + '; retrying in ' + wait + ' s');
          if (!r.closed) timer = setTimeout(open, wait * 1000 + Math.random() * 1000);
        });
      };
    }

    // diagnose asks the stream URL why it was refused (EventSource does not say);
    // it aborts at once if the server answers 200 this time.
    function diagnose(done) {
      if (!window.fetch || !window.AbortController) return done(0, 'the stream was refused or cut');
      var ac = new AbortController(), t = setTimeout(function () { ac.abort(); }, 5000);
      fetch(url, { signal: ac.signal, cache: 'no-store' }).then(function (res) {
        clearTimeout(t);
        if (res.ok) { ac.abort(); return done(0, 'the stream closed'); }
        return res.json().then(function (j) { return j && j.error; }, function () { return ''; }).then(function (msg) {
          done(res.status, 'HTTP ' + res.status + (msg ? ': ' + msg : ''));
        });
      }, function () { done(0, 'the service cannot be reached (network error, or CORS not allowed for ' + location.origin + ')'); });
    }

    if (!ROOM.test(name)) {
      r.error = 'invalid room name';
      set('state', 'error');
      warn('invalid room name (1 to 64 characters of A-Z a-z 0-9 . _ -)');
      return r;
    }
    if (!sharing) { open(); return r; }
    // Tab sharing: one tab (holder of the lock) streams and relays; the others listen.
    ch = new BroadcastChannel(key);
    ch.onmessage = function (e) {
      var m = e.data || {};
      if (m.hello) {
        if (r.leader) {
          ch.postMessage({ k: 'state', v: r.state, e: r.error });
          if (r.count !== null) ch.postMessage({ k: 'count', v: r.count });
          if (r.presence) ch.postMessage({ k: 'presence', v: r.presence });
        }
      } else if (!r.leader && EVENTS.indexOf(m.k) >= 0) {
        if (m.k === 'state') r.error = m.e || null;
        set(m.k, m.v);
      }
    };
    ch.postMessage({ hello: 1 });
    abort = new AbortController();
    navigator.locks.request(key, { signal: abort.signal }, function () {
      if (r.closed) return;
      r.leader = true;
      open();
      return new Promise(function (done) { release = done; });
    }).catch(function () { /* aborted by close() */ });
    return r;
  }

  // badge renders a room's count in a shadow root placed after the tag (or in data-target).
  function badge(tag, r) {
    var d = tag.dataset, pos = d.position || 'inline';
    var plural = d.label || '{n} people viewing', one = d.labelOne || '{n} person viewing';
    var host = document.createElement('presence-badge');
    var root = host.attachShadow({ mode: 'open' });
    var dark = d.theme === 'dark';
    var css = '' +
      ':host{all:initial;display:inline-block;vertical-align:middle;max-width:100%}' +
      ':host([hidden]){display:none}' +
      ':host([data-position=bottom-right]),:host([data-position=bottom-left]){position:fixed;bottom:16px;z-index:2147483000}' +
      ':host([data-position=bottom-right]){right:16px}:host([data-position=bottom-left]){left:16px}' +
      '.b{display:inline-flex;align-items:center;gap:.5em;box-sizing:border-box;max-width:100%;padding:.3em .8em;' +
      'border:1px solid var(--a,' + (dark ? '#57606a' : '#d0d7de') + ');border-radius:999px;' +
      'background:' + (dark ? '#1f2328;color:#f0f3f6' : '#fff;color:#1f2328') + ';' +
      'font:500 13px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;' +
      'font-variant-numeric:tabular-nums;white-space:nowrap;' +
      'box-shadow:0 1px 2px rgba(0,0,0,.12)}' +
      '.t{min-width:0;overflow:hidden;text-overflow:ellipsis}' +
      '.d{flex:none;width:.6em;height:.6em;border-radius:50%;background:' + (dark ? '#8c959f' : '#6e7781') + '}' +
      '.live .d{position:relative;background:var(--a,#1a7f37)}' +
      '.live .d::after{content:"";position:absolute;inset:0;border-radius:50%;background:inherit;animation:p 2s ease-out infinite}' +
      '.error{opacity:.75}' +
      '@keyframes p{from{transform:scale(1);opacity:.6}to{transform:scale(2.6);opacity:0}}' +
      '@media (prefers-reduced-motion:reduce){.live .d::after{animation:none;opacity:0}}';
    root.innerHTML = '<span class="b" role="status"><span class="d" aria-hidden="true"></span><span class="t" aria-live="polite"></span></span>';
    try { // a constructed sheet keeps the root's textContent to the badge's words
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      var st = document.createElement('style');
      st.textContent = css;
      root.insertBefore(st, root.firstChild);
    }
    var b = root.querySelector('.b'), t = root.querySelector('.t');
    if (d.color && window.CSS && CSS.supports('color', d.color)) b.style.setProperty('--a', d.color);
    if (pos === 'bottom-right' || pos === 'bottom-left') host.setAttribute('data-position', pos);
    function render() {
      var n = r.count, s = r.state;
      b.className = 'b ' + s;
      b.title = s === 'live' ? '' : 'Live count: ' + s;
      t.textContent = s === 'error' ? '–' : n === null ? plural.replace(/\{n\}/g, '…') :
        (n === 1 ? one : plural).replace(/\{n\}/g, n.toLocaleString());
    }
    r.on('state', render).on('count', render);
    render();
    function mount() {
      var target = d.target && document.querySelector(d.target);
      if (d.target && !target) console.warn('presence: data-target "' + d.target + '" matches nothing; the badge goes after the script tag');
      if (target) target.appendChild(host);
      else if (pos !== 'inline' || !tag.parentNode || tag.closest('head')) document.body.appendChild(host);
      else tag.parentNode.insertBefore(host, tag.nextSibling);
    }
    if (document.readyState === 'loading' && (d.target || !document.body || tag.closest('head'))) {
      document.addEventListener('DOMContentLoaded', mount);
    } else mount();
  }

  // tag handles one <script> tag: a badge tag joins its room now; an API-only tag on first use.
  function tag(el, b) {
    var r = null, room = el.dataset.room || 'lobby';
    if (el.dataset.badge !== 'false') badge(el, r = join(b, room));
    return function () { return r && !r.closed ? r : (r = join(b, room)); };
  }

  var mine = tag(script, base);
  window.presence = {
    sharing: sharing,
    base: base,
    visitor: visitor,
    room: function (name) { return name == null ? mine() : join(base, name); },
    on: function (ev, fn) { return mine().on(ev, fn); },
    off: function (ev, fn) { return mine().off(ev, fn); },
    _tag: tag
  };
})();
