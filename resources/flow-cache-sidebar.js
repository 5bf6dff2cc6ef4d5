/*
 * The "flow cache" sidebar tab: what the cache stores hold, read and changed through the package's admin
 * API (/flow-cache/...). A store picker, the namespaces of the store (flow tabs by their label, shared
 * namespaces by name, those nothing deployed uses any more marked orphaned), a filterable, paged key
 * table and the selected entry with its value in the debug sidebar's viewer. Changes (delete a key,
 * reset a cooldown, set a count, edit a plain value, clear or delete a namespace, purge expired
 * entries) are offered to users who may make them (flow-cache.write) and ask before anything is lost.
 *
 * Selecting a cache node in the workspace shows its namespace; each cache node's dialog has a link here.
 * Texts are in the cache-store catalogue under "cache-store.sidebar".
 */
(function () {
  'use strict';
  var MODULE = 'node-red-contrib-flow-cache';
  var TAB = 'flow-cache';
  var API = 'flow-cache/';
  var NODE_TYPES = ['cache-get', 'cache-set', 'cooldown-gate', 'counter', 'ttl-fetch'];
  var PAGE = 50;
  var AUTO_REFRESH_MS = 5000;
  var KIND_ICONS = { cooldown: 'fa-hourglass-half', counter: 'fa-calculator', fetch: 'fa-globe', value: 'fa-cube' };

  function t(id, values) {
    return RED._(MODULE + '/cache-store:cache-store.sidebar.' + id, values);
  }

  function mayChange() {
    return !RED.user || typeof RED.user.hasPermission !== 'function' || RED.user.hasPermission('flow-cache.write');
  }

  /** A namespace's name as routes give it: UTF-8 bytes in hex. */
  function hexOf(text) {
    var bytes = new TextEncoder().encode(text);
    var hex = '';
    for (var i = 0; i < bytes.length; i++) hex += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    return hex;
  }

  /** "3 h 12 min", "2 d 4 h", "45 s": the two largest units of a duration. */
  function duration(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var parts = [
      [Math.floor(s / 86400), t('units.d')],
      [Math.floor((s % 86400) / 3600), t('units.h')],
      [Math.floor((s % 3600) / 60), t('units.min')],
      [s % 60, t('units.s')],
    ];
    var first = -1;
    for (var i = 0; i < parts.length; i++) {
      if (parts[i][0] > 0) {
        first = i;
        break;
      }
    }
    if (first === -1) return '0 ' + t('units.s');
    return parts
      .slice(first, first + 2)
      .filter(function (p) {
        return p[0] > 0;
      })
      .map(function (p) {
        return p[0] + ' ' + p[1];
      })
      .join(' ');
  }

  /** A number in the browser's locale ("1.234,5" in German), with `digits` decimals (none if not given). */
  function number(n, digits) {
    var d = digits || 0;
    try {
      return Number(n).toLocaleString(undefined, { minimumFractionDigits: d, maximumFractionDigits: d });
    } catch (_e) {
      return Number(n).toFixed(d);
    }
  }

  /** A size in the browser's locale: "512 B", "3,4 KB", "100,0 MB" in German. */
  function bytes(n) {
    if (n === null || n === undefined) return '?';
    if (n < 1024) return number(n) + ' B';
    if (n < 1024 * 1024) return number(n / 1024, 1) + ' KB';
    return number(n / 1024 / 1024, 1) + ' MB';
  }

  /**
   * A text that names a count: `count` picks the catalogue's singular or plural form ("1 key",
   * "2 keys"; "id" and "id_plural"), `n` is the count as the browser's locale writes it.
   */
  function counted(id, count, values) {
    return RED._(MODULE + '/cache-store:cache-store.sidebar.' + id, Object.assign({}, values, { count: count, n: number(count) }));
  }

  function localTime(ms) {
    return ms === null || ms === undefined ? '' : new Date(ms).toLocaleString();
  }

  function api(method, path, body) {
    var request = { url: API + path, method: method, dataType: 'json', cache: false };
    if (body !== undefined) {
      request.contentType = 'application/json';
      request.data = JSON.stringify(body);
    }
    return $.ajax(request);
  }

  /**
   * Shows a notification whose text reaches the page as text. RED.notify() takes a string as HTML and
   * RED._() does not escape its substitutions, while keys, values, tab labels and store names come from
   * flows (an MQTT topic, a webhook field): every notification of this tab is built here, as an element
   * holding text.
   */
  function notify(text, type) {
    return RED.notify($('<p>').text(text), type);
  }

  function failure(xhr) {
    var message = (xhr && xhr.responseJSON && xhr.responseJSON.message) || (xhr && xhr.statusText) || String(xhr);
    notify(t('failed', { message: message }), 'error');
  }

  function confirmAction(message, label, action) {
    var dialog = RED.notify($('<p>').text(message), {
      modal: true,
      fixed: true,
      type: 'warning',
      buttons: [
        {
          text: t('cancel'),
          click: function () {
            dialog.close();
          },
        },
        {
          text: label,
          class: 'primary flow-cache-confirm',
          click: function () {
            dialog.close();
            action();
          },
        },
      ],
    });
  }

  var state = {
    stores: [],
    store: null,
    namespaces: [],
    namespace: null,
    filter: '',
    match: 'substring',
    sort: 'key',
    cursors: [null],
    page: 0,
    keys: null,
    key: null,
    entry: null,
    editing: false,
    timer: null,
    /** Where a selected node or a dialog link asked to go: applied once the stores are known. */
    wanted: null,
  };

  var ui = {};
  /** Selects and inputs of the tab: small, as the sidebar's own toolbars have them. */
  var FIELD = { height: '26px', padding: '0 4px', 'line-height': '24px', 'font-size': '13px', margin: '0', 'box-sizing': 'border-box' };

  function button(icon, title, onClick) {
    return $('<button type="button" class="red-ui-button red-ui-button-small">')
      .attr('title', title)
      .append($('<i class="fa">').addClass(icon))
      .on('click', function (event) {
        event.preventDefault();
        onClick();
      });
  }

  function textButton(text, cls, onClick) {
    return $('<button type="button" class="red-ui-button red-ui-button-small">')
      .addClass(cls)
      .text(text)
      .on('click', function (event) {
        event.preventDefault();
        onClick();
      });
  }

  function build() {
    // one scrolling column: a short sidebar section (Node-RED 5 splits the sidebar) scrolls to the entry
    var content = $('<div class="flow-cache-sidebar">').css({ position: 'relative', height: '100%', 'overflow-y': 'auto' });
    ui.content = content;
    var header = $('<div class="red-ui-sidebar-header flow-cache-header">').css({ 'text-align': 'left', display: 'flex', gap: '4px', 'align-items': 'center' }).appendTo(content);
    ui.store = $('<select class="flow-cache-store">').css(FIELD).css({ flex: '1 1 auto', 'min-width': '0' }).attr('title', t('store')).appendTo(header);
    ui.refresh = button('fa-refresh', t('refresh'), function () {
      refresh();
    })
      .addClass('flow-cache-refresh')
      .appendTo(header);
    var auto = $('<label class="flow-cache-auto">').css({ margin: '0', 'white-space': 'nowrap', 'font-size': '0.9em' }).attr('title', t('autoRefreshTitle')).appendTo(header);
    ui.auto = $('<input type="checkbox">').css({ margin: '0 3px 0 0', width: 'auto' }).appendTo(auto);
    $('<span>').text(t('autoRefresh')).appendTo(auto);
    ui.purge = button('fa-eraser', t('purge'), purge).addClass('flow-cache-purge').appendTo(header);

    ui.storeInfo = $('<div class="flow-cache-store-info">').css({ padding: '4px 8px', 'font-size': '0.85em', color: 'var(--red-ui-secondary-text-color, #777)' }).appendTo(content);

    var nsRow = $('<div class="flow-cache-namespace-row">').css({ padding: '0 8px 4px', display: 'flex', gap: '4px', 'align-items': 'center' }).appendTo(content);
    ui.namespace = $('<select class="flow-cache-namespace">').css(FIELD).css({ flex: '1 1 auto', 'min-width': '0' }).attr('title', t('namespace')).appendTo(nsRow);
    ui.clear = textButton(t('clear'), 'flow-cache-clear', clearNamespace).appendTo(nsRow);
    ui.namespaceInfo = $('<div class="flow-cache-namespace-info">').css({ padding: '0 8px 4px', 'font-size': '0.85em', color: 'var(--red-ui-secondary-text-color, #777)' }).appendTo(content);

    // the filter box has a line of its own; the two selects share the next one, each as wide as its
    // longest choice, and go onto lines of their own where the sidebar is too narrow for both
    var filterRow = $('<div class="flow-cache-filter-row">').css({ padding: '0 8px 4px', display: 'flex', 'flex-wrap': 'wrap', gap: '4px' }).appendTo(content);
    ui.filter = $('<input type="text" class="flow-cache-filter">').attr('placeholder', t('filter')).css(FIELD).css({ flex: '1 1 100%', width: '100%', 'min-width': '0' }).appendTo(filterRow);
    ui.match = $('<select class="flow-cache-match">')
      .css(FIELD)
      .css({ width: 'auto', flex: '1 1 auto' })
      .append($('<option value="substring">').text(t('match.substring')))
      .append($('<option value="prefix">').text(t('match.prefix')))
      .appendTo(filterRow);
    ui.sort = $('<select class="flow-cache-sort">')
      .css(FIELD)
      .css({ width: 'auto', flex: '1 1 auto' })
      .append($('<option value="key">').text(t('sort.key')))
      .append($('<option value="stored">').text(t('sort.stored')))
      .appendTo(filterRow);

    ui.keys = $('<div class="flow-cache-keys">').css({ 'max-height': '40vh', 'min-height': '60px', 'overflow-y': 'auto', 'border-top': '1px solid var(--red-ui-secondary-border-color, #ddd)' }).appendTo(content);
    var pager = $('<div class="flow-cache-pager">').css({ padding: '3px 8px', display: 'flex', 'align-items': 'center', gap: '4px', 'border-top': '1px solid var(--red-ui-secondary-border-color, #ddd)' }).appendTo(content);
    ui.pageText = $('<span class="flow-cache-page">').css({ flex: '1 1 auto', 'font-size': '0.9em' }).appendTo(pager);
    ui.prev = button('fa-chevron-left', t('prev'), function () {
      if (state.page > 0) {
        state.page--;
        loadKeys();
      }
    })
      .addClass('flow-cache-prev')
      .appendTo(pager);
    ui.next = button('fa-chevron-right', t('next'), function () {
      if (state.cursors[state.page + 1]) {
        state.page++;
        loadKeys();
      }
    })
      .addClass('flow-cache-next')
      .appendTo(pager);
    ui.entry = $('<div class="flow-cache-entry">').css({ padding: '6px 8px', 'border-top': '1px solid var(--red-ui-secondary-border-color, #ddd)' }).appendTo(content);

    ui.store.on('change', function () {
      state.store = ui.store.val();
      state.namespace = null;
      forgetEntry();
      resetPaging();
      showStoreInfo();
      loadNamespaces();
    });
    ui.namespace.on('change', function () {
      state.namespace = ui.namespace.val();
      forgetEntry();
      resetPaging();
      showNamespaceInfo();
      loadKeys();
    });
    var typing;
    ui.filter.on('input', function () {
      clearTimeout(typing);
      typing = setTimeout(function () {
        state.filter = ui.filter.val();
        resetPaging();
        loadKeys();
      }, 250);
    });
    ui.match.on('change', function () {
      state.match = ui.match.val();
      resetPaging();
      loadKeys();
    });
    ui.sort.on('change', function () {
      state.sort = ui.sort.val();
      resetPaging();
      loadKeys();
    });
    ui.auto.on('change', function () {
      setAuto(ui.auto.prop('checked'));
    });
    return content;
  }

  /** Another namespace or store is shown: the entry of the one before is gone from view (and never asked for there). */
  function forgetEntry() {
    state.key = null;
    state.entry = null;
    state.editing = false;
    latest.entry++;
    renderEntry();
  }

  function resetPaging() {
    state.cursors = [null];
    state.page = 0;
  }

  function visible() {
    return ui.keys && ui.keys.is(':visible');
  }

  function setAuto(on) {
    clearInterval(state.timer);
    state.timer = null;
    if (on) {
      state.timer = setInterval(function () {
        if (visible() && !state.editing) refresh(true);
      }, AUTO_REFRESH_MS);
    }
  }

  function currentStore() {
    for (var i = 0; i < state.stores.length; i++) if (state.stores[i].id === state.store) return state.stores[i];
    return null;
  }

  function currentNamespace() {
    for (var i = 0; i < state.namespaces.length; i++) if (state.namespaces[i].namespace === state.namespace) return state.namespaces[i];
    return null;
  }

  /** Reloads everything shown, keeping the selection; `quiet` (auto-refresh) reports no errors. */
  function refresh(quiet) {
    return loadStores(quiet);
  }

  function loadStores(quiet) {
    return api('GET', 'stores').then(
      function (answer) {
        state.stores = answer.stores;
        applyWanted();
        if (!currentStore()) state.store = state.stores.length ? state.stores[0].id : null;
        ui.store.empty();
        state.stores.forEach(function (store) {
          var name = store.default ? t('defaultStore') : store.configNodes.length ? store.configNodes[0].name || store.file || store.id : store.file || store.id;
          $('<option>')
            .val(store.id)
            .text(name + (store.error ? ' (' + t('invalid') + ')' : ''))
            .appendTo(ui.store);
        });
        ui.store.val(state.store);
        showStoreInfo();
        return loadNamespaces(quiet);
      },
      function (xhr) {
        if (!quiet) failure(xhr);
      },
    );
  }

  /** An eviction policy's or a durability's name in the editor's language; one it does not know as it is. */
  function policyName(value) {
    return ['least-recently-stored', 'least-recently-used', 'none'].indexOf(value) !== -1 ? t('policy.' + value) : String(value);
  }

  function durabilityName(value) {
    return ['immediate', 'deferred'].indexOf(value) !== -1 ? t('durability.' + value) : String(value);
  }

  function showStoreInfo() {
    var store = currentStore();
    ui.storeInfo.empty();
    ui.purge.toggle(mayChange());
    if (!store) return;
    if (store.error && !store.file) {
      ui.storeInfo.text(t('invalidStore', { error: store.error }));
      return;
    }
    var line = store.exists
      ? counted('storeInfo', store.entries, {
          used: bytes(store.bytesUsed),
          limit: bytes(store.sizeLimitBytes),
          policy: policyName(store.evictionPolicy),
          durability: durabilityName(store.durability),
          zone: store.timezone,
        })
      : t('notCreated');
    $('<div class="flow-cache-file">').css('word-break', 'break-all').text(store.file).attr('title', store.driver ? store.driver : '').appendTo(ui.storeInfo);
    $('<div>').text(line).appendTo(ui.storeInfo);
    if (store.expired > 0) $('<div>').text(counted('expiredWaiting', store.expired)).appendTo(ui.storeInfo);
    if (store.error) $('<div>').css('color', 'var(--red-ui-text-color-error, #c00)').text(store.error).appendTo(ui.storeInfo);
  }

  function namespaceLabel(ns) {
    var kind = t('kind.' + ns.kind);
    var label = ns.label + ' (' + kind + (ns.orphaned ? ', ' + t('orphaned') : '') + ')';
    return label + ' \u00b7 ' + counted('entries', ns.entries);
  }

  // Each list answers the latest request only: an answer that arrives after a newer request was sent
  // (a filter typed on, a refresh while another was under way) is dropped, never drawn over the newer one.
  var latest = { namespaces: 0, keys: 0, entry: 0 };

  function loadNamespaces(quiet) {
    var mine = ++latest.namespaces;
    if (!state.store) {
      renderNamespaces();
      return $.Deferred().resolve().promise();
    }
    return api('GET', 'stores/' + encodeURIComponent(state.store) + '/namespaces').then(
      function (answer) {
        if (mine !== latest.namespaces) return;
        state.namespaces = answer.namespaces;
        var before = state.namespace;
        var inView = state.followTab;
        state.followTab = null;
        if (inView && state.namespaces.some(function (ns) { return ns.namespace === inView; })) state.namespace = inView;
        if (!currentNamespace()) state.namespace = state.namespaces.length ? state.namespaces[0].namespace : null;
        if (state.namespace !== before) {
          state.key = null;
          state.entry = null;
          resetPaging();
        }
        renderNamespaces();
        return loadKeys(quiet);
      },
      function (xhr) {
        if (mine !== latest.namespaces) return;
        state.namespaces = [];
        renderNamespaces();
        if (!quiet) failure(xhr);
      },
    );
  }

  function renderNamespaces() {
    ui.namespace.empty();
    if (state.namespaces.length === 0) {
      $('<option value="">').text(t('noNamespaces')).appendTo(ui.namespace);
      state.namespace = null;
    }
    state.namespaces.forEach(function (ns) {
      $('<option>').val(ns.namespace).text(namespaceLabel(ns)).appendTo(ui.namespace);
    });
    ui.namespace.val(state.namespace || '');
    showNamespaceInfo();
  }

  function showNamespaceInfo() {
    var ns = currentNamespace();
    ui.namespaceInfo.empty();
    ui.clear.toggle(!!ns && mayChange() && !ns.readOnly);
    if (!ns) return;
    ui.clear.text(ns.orphaned ? t('deleteNamespace') : t('clear'));
    var parts = [ns.name];
    if (ns.expired > 0) parts.push(counted('expiredWaiting', ns.expired));
    ui.namespaceInfo.text(parts.join(' \u00b7 '));
    if (ns.orphaned) $('<div class="flow-cache-orphaned">').text(ns.kind === 'flow' ? t('orphanedFlow') : t('orphanedShared')).appendTo(ui.namespaceInfo);
    if (ns.readOnly) $('<div class="flow-cache-read-only">').text(t('readOnly')).appendTo(ui.namespaceInfo);
  }

  function loadKeys(quiet) {
    var mine = ++latest.keys;
    var ns = currentNamespace();
    if (!state.store || !ns) {
      state.keys = null;
      renderKeys();
      renderEntry();
      return $.Deferred().resolve().promise();
    }
    var query = { limit: PAGE, sort: state.sort, match: state.match };
    if (state.filter) query.filter = state.filter;
    var cursor = state.cursors[state.page];
    if (cursor) query.cursor = cursor;
    var path = 'stores/' + encodeURIComponent(state.store) + '/namespaces/' + ns.namespace + '/keys?' + $.param(query);
    return api('GET', path).then(
      function (answer) {
        if (mine !== latest.keys) return;
        state.keys = answer;
        state.cursors[state.page + 1] = answer.next;
        state.cursors.length = state.page + 2;
        renderKeys();
        return loadEntry(quiet);
      },
      function (xhr) {
        if (mine !== latest.keys) return;
        if (!quiet) failure(xhr);
      },
    );
  }

  function renderKeys() {
    ui.keys.empty();
    var answer = state.keys;
    if (!answer || answer.keys.length === 0) {
      $('<div class="flow-cache-no-keys">')
        .css({ padding: '8px', color: 'var(--red-ui-secondary-text-color, #777)', 'font-style': 'italic' })
        .text(currentNamespace() ? t('noKeys') : t('noNamespaces'))
        .appendTo(ui.keys);
      ui.pageText.text('');
      ui.prev.prop('disabled', true);
      ui.next.prop('disabled', true);
      return;
    }
    var table = $('<table class="flow-cache-key-table">').css({ width: '100%', 'border-collapse': 'collapse', 'font-size': '0.9em' }).appendTo(ui.keys);
    answer.keys.forEach(function (info) {
      var row = $('<tr class="flow-cache-key">')
        .attr('data-key', info.key)
        .css({ cursor: 'pointer', 'border-bottom': '1px solid var(--red-ui-secondary-border-color, #eee)' })
        .appendTo(table);
      if (info.key === state.key) row.addClass('selected').css('background', 'var(--red-ui-list-item-background-selected, #ffebc7)');
      $('<td>')
        .css({ width: '18px', padding: '3px 4px', color: 'var(--red-ui-secondary-text-color, #777)' })
        .append($('<i class="fa">').addClass(KIND_ICONS[info.kind] || 'fa-cube').attr('title', t('kinds.' + info.kind)))
        .appendTo(row);
      $('<td class="flow-cache-key-name">').css({ padding: '3px 4px', 'font-family': 'monospace', 'word-break': 'break-all' }).text(info.key).appendTo(row);
      var when =
        info.remaining !== null
          ? t('left', { time: duration(info.remaining) })
          : t('ago', { time: duration(answer.now - info.storedAt) });
      $('<td class="flow-cache-key-when">')
        .css({ padding: '3px 4px', 'text-align': 'right', 'white-space': 'nowrap', color: 'var(--red-ui-secondary-text-color, #777)' })
        .attr('title', t('storedAt') + ' ' + localTime(info.storedAt))
        .text(when)
        .appendTo(row);
      row.on('click', function () {
        state.key = info.key;
        state.editing = false;
        ui.keys.find('tr.selected').removeClass('selected').css('background', '');
        row.addClass('selected').css('background', 'var(--red-ui-list-item-background-selected, #ffebc7)');
        loadEntry().then(reveal);
      });
    });
    var from = state.page * PAGE + 1;
    ui.pageText.text(t('page', { from: number(from), to: number(from + answer.keys.length - 1), total: number(answer.total) }));
    ui.prev.prop('disabled', state.page === 0);
    ui.next.prop('disabled', !answer.next);
  }

  /** Scrolls the tab so that the selected entry's title, facts and buttons show (a short sidebar section shows them below the keys). */
  function reveal() {
    if (!state.entry) return;
    var box = ui.content[0].getBoundingClientRect();
    var entry = ui.entry[0].getBoundingClientRect();
    var actions = ui.entry.find('.flow-cache-actions')[0];
    var bottom = actions ? actions.getBoundingClientRect().bottom : entry.top + 120;
    // down until the buttons show, but never past the title; up to the title if it is above the view
    if (entry.top < box.top) ui.content[0].scrollTop += entry.top - box.top - 4;
    else if (bottom > box.bottom) ui.content[0].scrollTop += Math.min(bottom - box.bottom + 4, entry.top - box.top - 4);
  }

  function entryPath(key) {
    return 'stores/' + encodeURIComponent(state.store) + '/namespaces/' + state.namespace + '/entries/' + encodeURIComponent(key);
  }

  function loadEntry(quiet) {
    var mine = ++latest.entry;
    if (!state.key || !state.namespace) {
      state.entry = null;
      renderEntry();
      return $.Deferred().resolve().promise();
    }
    if (state.editing) return $.Deferred().resolve().promise();
    var key = state.key;
    return api('GET', entryPath(key)).then(
      function (answer) {
        if (mine !== latest.entry) return;
        state.entry = answer.entry;
        state.entryNow = answer.now;
        renderEntry();
      },
      function (xhr) {
        if (mine !== latest.entry) return;
        state.entry = null;
        if (xhr.status === 404) {
          renderEntry(t('gone', { key: key }));
        } else {
          renderEntry();
          if (!quiet) failure(xhr);
        }
      },
    );
  }

  function metaRow(table, label, value, cls) {
    var row = $('<tr>').appendTo(table);
    if (cls) row.addClass(cls);
    // a long label ("Passes this period") wraps rather than squeezing the value into a narrow column
    $('<td class="flow-cache-meta-label">').css({ padding: '2px 8px 2px 0', color: 'var(--red-ui-secondary-text-color, #777)', 'vertical-align': 'top', width: '35%', 'overflow-wrap': 'anywhere' }).text(label).appendTo(row);
    var cell = $('<td class="flow-cache-meta-value">').css({ padding: '2px 0', 'overflow-wrap': 'anywhere' }).appendTo(row);
    if (value instanceof $) cell.append(value);
    else cell.text(value);
    return cell;
  }

  function renderEntry(message) {
    ui.entry.empty();
    var entry = state.entry;
    if (!entry) {
      $('<div>')
        .css({ color: 'var(--red-ui-secondary-text-color, #777)', 'font-style': 'italic' })
        .text(message || (state.keys && state.keys.keys.length ? t('pickKey') : ''))
        .appendTo(ui.entry);
      return;
    }
    var ns = currentNamespace();
    var changes = mayChange() && ns && !ns.readOnly;
    var title = $('<div class="flow-cache-entry-title">').css({ 'font-weight': 'bold', 'margin-bottom': '4px', 'word-break': 'break-all' }).appendTo(ui.entry);
    $('<i class="fa">')
      .addClass(KIND_ICONS[entry.kind] || 'fa-cube')
      .css('margin-right', '6px')
      .appendTo(title);
    $('<span class="flow-cache-entry-key">').css('font-family', 'monospace').text(entry.key).appendTo(title);
    $('<span>')
      .css({ 'font-weight': 'normal', color: 'var(--red-ui-secondary-text-color, #777)', 'margin-left': '6px' })
      .text(t('kinds.' + entry.kind))
      .appendTo(title);

    var table = $('<table class="flow-cache-meta">').css({ width: '100%', 'font-size': '0.9em', 'margin-bottom': '6px' }).appendTo(ui.entry);
    if (entry.cooldown) {
      var cd = entry.cooldown;
      if (cd.lastPassed !== null) metaRow(table, t('cooldown.lastPassed'), cd.lastPassedText + ' (' + t('ago', { time: duration(cd.elapsed) }) + ')');
      if (cd.classic) {
        metaRow(table, t('cooldown.timeLeft'), cd.remaining === null ? t('never') : cd.remaining > 0 ? duration(cd.remaining) : t('cooldown.over'), 'flow-cache-cooldown-left');
        if (cd.length !== null) metaRow(table, t('cooldown.length'), duration(cd.length));
      } else {
        if (cd.passes !== null) metaRow(table, t('cooldown.passes'), String(cd.passes));
        if (cd.count !== null) metaRow(table, t('cooldown.count'), String(cd.count));
        if (cd.held !== null) metaRow(table, t('cooldown.held'), String(cd.held));
      }
    }
    if (entry.counter) {
      metaRow(table, t('counter.count'), String(entry.counter.count), 'flow-cache-count').css({ 'font-size': '1.4em', 'font-weight': 'bold' });
      metaRow(table, t('counter.periodStart'), entry.counter.periodStartText || t('counter.noPeriod'));
    }
    if (entry.fetch) {
      var f = entry.fetch;
      metaRow(table, t('fetch.status'), String(f.statusCode) + (f.contentType ? ' \u00b7 ' + f.contentType : ''));
      metaRow(table, t('fetch.url'), f.url || t('fetch.unknownUrl'), 'flow-cache-fetch-url');
      metaRow(table, t('fetch.age'), duration(f.age) + ' (' + f.fetchedAtText + ')');
    }
    metaRow(table, t('storedAt'), entry.storedAtText);
    metaRow(table, t('expiresAt'), entry.expiresAt === null ? t('never') : entry.expiresAtText + ' (' + t('left', { time: duration(entry.remaining) }) + ')');
    metaRow(table, t('size'), bytes(entry.size) + (entry.evictable ? '' : ' \u00b7 ' + t('pinned')));

    var actions = $('<div class="flow-cache-actions">').css({ display: 'flex', gap: '4px', 'flex-wrap': 'wrap', margin: '6px 0' }).appendTo(ui.entry);
    if (changes && entry.kind === 'cooldown') {
      textButton(t('cooldown.reset'), 'flow-cache-reset', function () {
        confirmAction(t('cooldown.resetConfirm', { key: entry.cooldown.key }), t('cooldown.reset'), function () {
          removeEntry(entry.key, t('cooldown.resetDone', { key: entry.cooldown.key }));
        });
      }).appendTo(actions);
    }
    if (changes && entry.kind === 'counter') {
      var count = $('<input type="number" class="flow-cache-count-input">').css(FIELD).css({ width: '90px' }).val(entry.counter.count).appendTo(actions);
      textButton(t('counter.set'), 'flow-cache-set-count', function () {
        var n = Number(count.val());
        if (count.val() === '' || !isFinite(n)) {
          notify(t('counter.notANumber'), 'warning');
          return;
        }
        confirmAction(t('counter.setConfirm', { key: entry.counter.key, from: String(entry.counter.count), to: String(n) }), t('counter.set'), function () {
          api('PUT', entryPath(entry.key), { count: n }).then(function (answer) {
            state.entry = answer.entry;
            notify(t('counter.setDone', { key: entry.counter.key, count: String(n) }), 'success');
            refresh(true);
          }, failure);
        });
      }).appendTo(actions);
    }
    if (changes && entry.editable) textButton(t('edit'), 'flow-cache-edit', editValue).appendTo(actions);
    textButton(t('download'), 'flow-cache-download', download).appendTo(actions);
    if (changes) {
      textButton(t('delete'), 'flow-cache-delete', function () {
        confirmAction(t('deleteConfirm', { key: entry.key }), t('delete'), function () {
          removeEntry(entry.key, t('deleted', { key: entry.key }));
        });
      }).appendTo(actions);
    }

    var holder = $('<div class="flow-cache-value red-ui-debug-msg">').css({ 'border-left-width': '0', padding: '4px 0' }).appendTo(ui.entry);
    $('<div>').css({ 'font-size': '0.85em', color: 'var(--red-ui-secondary-text-color, #777)' }).text(entry.fetch ? t('fetch.body') : t('value')).appendTo(holder);
    var tree = RED.utils.createObjectElement(entry.preview.value, { key: '', hideKey: true });
    $('<div class="red-ui-debug-msg-payload">').append(tree).appendTo(holder);
    // the top level shows open, as a value is what the user came for
    tree.find('.red-ui-debug-msg-expandable').first().trigger('click');
    if (entry.preview.truncated) $('<div class="flow-cache-truncated">').css({ 'font-size': '0.85em', 'font-style': 'italic' }).text(t('truncated')).appendTo(ui.entry);
  }

  function removeEntry(key, done) {
    api('DELETE', entryPath(key)).then(function () {
      notify(done, 'success');
      state.key = null;
      state.entry = null;
      refresh(true);
    }, failure);
  }

  function fullValue(key) {
    return $.ajax({ url: API + entryPath(key) + '?download=1', method: 'GET', dataType: 'text', cache: false });
  }

  function download() {
    var key = state.entry.key;
    fullValue(key).then(function (text) {
      var link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob([text], { type: 'application/json' }));
      link.download = key.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 100) + '.json';
      document.body.appendChild(link);
      link.click();
      setTimeout(function () {
        URL.revokeObjectURL(link.href);
        link.remove();
      }, 1000);
    }, failure);
  }

  function editValue() {
    var entry = state.entry;
    fullValue(entry.key).then(function (text) {
      state.editing = true;
      var pretty = text;
      try {
        pretty = JSON.stringify(JSON.parse(text), null, 2);
      } catch (_e) {
        // shown as stored
      }
      var box = $('<div class="flow-cache-editor">').css({ margin: '6px 0' });
      var area = $('<textarea class="flow-cache-json">').css({ width: '100%', height: '160px', 'font-family': 'monospace', 'box-sizing': 'border-box' }).val(pretty).appendTo(box);
      var row = $('<div>').css({ display: 'flex', gap: '4px', 'margin-top': '4px' }).appendTo(box);
      textButton(t('save'), 'primary flow-cache-save', function () {
        var value;
        try {
          value = JSON.parse(area.val());
        } catch (error) {
          notify(t('badJson', { message: error.message }), 'warning');
          return;
        }
        confirmAction(t('saveConfirm', { key: entry.key }), t('save'), function () {
          api('PUT', entryPath(entry.key), { value: value }).then(function (answer) {
            state.editing = false;
            state.entry = answer.entry;
            notify(t('saved', { key: entry.key }), 'success');
            refresh(true);
          }, failure);
        });
      }).appendTo(row);
      textButton(t('cancel'), 'flow-cache-cancel', function () {
        state.editing = false;
        renderEntry();
      }).appendTo(row);
      ui.entry.find('.flow-cache-actions').after(box);
      area.trigger('focus');
    }, failure);
  }

  function clearNamespace() {
    var ns = currentNamespace();
    if (!ns) return;
    var message = ns.orphaned ? counted('deleteNamespaceConfirm', ns.entries, { namespace: ns.label }) : counted('clearConfirm', ns.entries, { namespace: ns.label });
    confirmAction(message, ns.orphaned ? t('deleteNamespace') : t('clear'), function () {
      api('DELETE', 'stores/' + encodeURIComponent(state.store) + '/namespaces/' + ns.namespace).then(function (answer) {
        notify(counted('cleared', answer.removed, { namespace: ns.label }), 'success');
        state.key = null;
        state.entry = null;
        resetPaging();
        refresh(true);
      }, failure);
    });
  }

  function purge() {
    var store = currentStore();
    if (!store) return;
    confirmAction(t('purgeConfirm', { file: store.file || store.id }), t('purge'), function () {
      api('POST', 'stores/' + encodeURIComponent(store.id) + '/purge-expired', {}).then(function (answer) {
        notify(counted('purged', answer.removed), 'success');
        refresh(true);
      }, failure);
    });
  }

  /** The store and namespace a node of the workspace works in (undefined inside a subflow's definition). */
  function placeOf(node) {
    var storeId = node.store || '';
    var config = storeId ? RED.nodes.node(storeId) : null;
    if (storeId && !config) return undefined;
    if (config && config.scope === 'shared' && config.namespace) return { store: storeId, namespace: hexOf('shared:' + String(config.namespace).trim()) };
    if (!node.z || !RED.nodes.workspace(node.z)) return undefined;
    return { store: storeId || 'default', namespace: hexOf('flow:' + node.z) };
  }

  /** Picks the store a wanted place names (a config node id names the store that holds its file). */
  function applyWanted() {
    var wanted = state.wanted;
    if (!wanted) return;
    state.wanted = null;
    for (var i = 0; i < state.stores.length; i++) {
      var store = state.stores[i];
      var named =
        store.id === wanted.store ||
        store.configNodes.some(function (c) {
          return c.id === wanted.store;
        });
      if (named) {
        if (state.store !== store.id || state.namespace !== wanted.namespace) {
          state.key = null;
          state.entry = null;
          resetPaging();
        }
        state.store = store.id;
        state.namespace = wanted.namespace;
        return;
      }
    }
  }

  /**
   * The tab opens on the namespace of the flow tab in view, and follows when another flow tab is shown
   * (if the store shown keeps a namespace for it); true if the flow tab in view changed since the last time.
   */
  var lastTab = null;
  function followTab() {
    var tab = RED.workspaces && typeof RED.workspaces.active === 'function' ? RED.workspaces.active() : null;
    if (!tab || tab === lastTab || state.wanted) return false;
    lastTab = tab;
    state.followTab = hexOf('flow:' + tab);
    return true;
  }

  /** Shows a node's namespace: now if the tab is showing, else when it is next shown. */
  function showPlaceOf(node, reveal) {
    var place = placeOf(node);
    if (!place) return;
    state.wanted = place;
    if (reveal) RED.sidebar.show(TAB);
    if (visible() || reveal) refresh();
  }

  /** A link in a cache node's dialog to its namespace here. */
  function addDialogLink() {
    var tries = 0;
    var attempt = function () {
      var stack = RED.editor && typeof RED.editor.getEditStack === 'function' ? RED.editor.getEditStack() : [];
      var node = stack[stack.length - 1];
      var form = $('.red-ui-tray').last().find('#dialog-form');
      if (node && NODE_TYPES.indexOf(node.type) !== -1 && form.length && form.find('.flow-cache-dialog-link').length === 0) {
        if (!placeOf(node)) return;
        $('<div class="form-row flow-cache-dialog-link">')
          .append(
            $('<a href="#">')
              .append($('<i class="fa fa-archive">').css('margin-right', '4px'))
              .append($('<span>').text(t('showInSidebar')))
              .on('click', function (event) {
                event.preventDefault();
                showPlaceOf(node, true);
              }),
          )
          .appendTo(form);
        return;
      }
      if (++tries < 20) setTimeout(attempt, 50);
    };
    setTimeout(attempt, 0);
  }

  function init() {
    var content = build();
    RED.sidebar.addTab({
      id: TAB,
      label: t('label'),
      name: t('name'),
      // fa-database is the Context Data tab's
      iconClass: 'fa fa-archive',
      content: content,
      enableOnEdit: true,
      onchange: function () {
        followTab();
        refresh();
      },
    });
    RED.events.on('workspace:change', function () {
      if (!visible()) return;
      if (followTab()) refresh();
    });
    RED.events.on('view:selection-changed', function (selection) {
      var nodes = selection && selection.nodes;
      if (nodes && nodes.length === 1 && NODE_TYPES.indexOf(nodes[0].type) !== -1) showPlaceOf(nodes[0], false);
    });
    RED.events.on('editor:open', addDialogLink);
  }

  // the editor loads node files after its sidebar is built and each node set's catalogue is loaded
  if (window.FlowCacheSidebar) return;
  window.FlowCacheSidebar = { hexOf: hexOf, refresh: refresh, show: showPlaceOf };
  init();
})();
