// watchHandle is presence.watch(names): the rooms' views, and listeners
// called with (value, room) for each of them, until close().
function watchHandle(names) {
  if (typeof names === 'string') names = [names];
  if (!Array.isArray(names)) throw new TypeError("presence: watch(['room-a', 'room-b'])");
  var ws = pageWatch(), views = {}, subs = [], closed = false;
  names.forEach(function (n) {
    n = String(n);
    if (!views[n]) views[n] = ws.add(n);
  });
  var h = {
    rooms: views,
    room: function (name) { return views[name] || null; },
    on: function (ev, fn) {
      if (EVENTS.indexOf(ev) < 0 || typeof fn !== 'function') throw new TypeError('presence: on(count|presence|state, fn)');
      if (closed) return h;
      Object.keys(views).forEach(function (n) {
        var w = function (v) { fn(v, n); };
        subs.push({ ev: ev, fn: fn, view: views[n], w: w });
        views[n].on(ev, w);
      });
      return h;
    },
    off: function (ev, fn) {
      subs = subs.filter(function (s) {
        if (s.ev !== ev || s.fn !== fn) return true;
        s.view.off(ev, s.w);
        return false;
      });
      return h;
    },
    close: function () {
      if (closed) return;
      closed = true;
      subs.forEach(function (s) { s.view.off(s.ev, s.w); });
      subs = [];
      Object.keys(views).forEach(function (n) { ws.release(n); });
    }
  };
  return h;
}

// watchBadges gives every element with data-presence-watch="room" a badge
// of that room's count, now and as the page adds (or removes) them: an
// infinite list's new badges join the stream without a reload.
function watchBadges() {
  var tracked = new Set();
  function add(el) {
    var name = el.getAttribute('data-presence-watch'), cur = el._presenceWatch;
    if (cur && cur.name === name) return;
    if (cur) drop(el);
    if (name === null) return;
    var view = pageWatch().add(name);
    var host = badgeHost(el.dataset, data, view, '{n} viewing', '{n} viewing');
    el.appendChild(host);
    el._presenceWatch = { name: name, host: host, view: view };
    tracked.add(el);
  }
  function drop(el) {
    var cur = el._presenceWatch;
    cur.view.off('state', cur.host._presenceRender).off('count', cur.host._presenceRender);
    cur.host.remove();
    if (cur.view.error !== 'invalid room name') pageWatch().release(cur.name);
    delete el._presenceWatch;
    tracked.delete(el);
  }
  function scan(node) {
    if (node.nodeType !== 1) return;
    if (node.hasAttribute('data-presence-watch')) add(node);
    [].forEach.call(node.querySelectorAll('[data-presence-watch]'), add);
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { scan(document.documentElement); });
  }
  scan(document.documentElement);
  new MutationObserver(function (muts) {
    var removed = false;
    muts.forEach(function (m) {
      if (m.type === 'attributes') return m.target.hasAttribute('data-presence-watch') ? add(m.target) : m.target._presenceWatch && drop(m.target);
      [].forEach.call(m.addedNodes, scan);
      removed = removed || m.removedNodes.length > 0;
    });
    if (removed) tracked.forEach(function (el) { if (!el.isConnected) drop(el); });
  }).observe(document.documentElement, { childList: true, subtree: true, attributes: true, attributeFilter: ['data-presence-watch'] });
}
