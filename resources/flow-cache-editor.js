/*
 * Editor helpers shared by every node of node-red-contrib-flow-cache (each node's .html loads this file
 * before its own script). What the dialogs have in common is decided here once: the Store and Key
 * fields, the common defaults, the time units, the validators and the texts they show.
 *
 * Texts: a node's own texts are in its catalogue (locales/<lang>/<type>.json, under "<type>"); the texts
 * of these helpers are in the cache-store catalogue under "cache-store.editor" (every other node's Store
 * field needs the cache-store node anyway), as the runtime's shared texts are under "cache-store.runtime".
 * `text(id)` reads them.
 */
(function () {
  'use strict';
  var MODULE = 'node-red-contrib-flow-cache';
  var KEY_TYPES = ['msg', 'str', 'flow', 'global', 'env', 'jsonata'];
  var UNITS = ['seconds', 'minutes', 'hours', 'days'];
  /** Longest key or URL a node label shows before it is cut with "…". */
  var LABEL_LENGTH = 30;

  /** `value` as HTML text: & < > " ' written as entities. */
  function escapeHtml(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  /**
   * Substitution values made safe for HTML. Node-RED shows a validator's text as HTML (the field's
   * tooltip, the node's "invalid properties" tooltip) and its i18n does not escape substitutions, while
   * a value may come from a flow file (a key, a type, a URL): each text value is escaped here, numbers
   * (and `count`, which picks the plural form) stay numbers.
   */
  function safeValues(values) {
    if (!values || typeof values !== 'object') return values;
    var safe = {};
    Object.keys(values).forEach(function (name) {
      var value = values[name];
      safe[name] = typeof value === 'number' || typeof value === 'boolean' ? value : escapeHtml(value === null || value === undefined ? '' : value);
    });
    return safe;
  }

  /**
   * A text of these helpers (cache-store catalogue, "cache-store.editor" section). The result is HTML:
   * its substitution values are escaped (a validator's text is shown as HTML).
   */
  function text(id, values) {
    return RED._(MODULE + '/cache-store:cache-store.editor.' + id, safeValues(values));
  }

  /** A text of one node's own catalogue: nodeText('ttl-fetch', 'errors.url'); substitution values escaped as in text(). */
  function nodeText(type, id, values) {
    return RED._(MODULE + '/' + type + ':' + type + '.' + id, safeValues(values));
  }

  function isBlank(v) {
    return v === undefined || v === null || String(v).trim() === '';
  }

  /** True while `node`'s edit dialog is open (its fields then hold the current choices, not yet saved). */
  function editing(node) {
    var stack = RED.editor && typeof RED.editor.getEditStack === 'function' ? RED.editor.getEditStack() : [];
    return stack.indexOf(node) !== -1;
  }

  /** A property as the user sees it: the open dialog's field, else the saved value; blank gives `fallback`. */
  function current(node, property, fallback) {
    var value = node[property];
    if (editing(node)) {
      var config = node._def && node._def.category === 'config';
      var field = $((config ? '#node-config-input-' : '#node-input-') + property);
      if (field.length) value = field.val();
    }
    return isBlank(value) ? fallback : value;
  }

  // Validators declare two parameters: only then does Node-RED (4.1+) show a returned text as the error.

  /** Wraps a validator so that an absent or empty value is valid (the runtime then uses the default). */
  function orDefault(validate) {
    return function (v, opt) {
      return v === undefined || v === null || v === '' || validate.call(this, v, opt);
    };
  }

  /**
   * A number (or numeric text) >= min, or > min with `exclusive`, and <= `max` if given;
   * `allowBlank` accepts '' (meaning "the default").
   */
  function number(min, options) {
    options = options || {};
    return function (v, _opt) {
      if (isBlank(v)) return options.allowBlank ? true : text('errors.required');
      var n = Number(v);
      if (!isFinite(n)) return text('errors.notANumber');
      if (options.exclusive && n <= min) return text('errors.above', { min: min });
      if (n < min) return text('errors.atLeast', { min: min });
      if (options.max !== undefined && n > options.max) return text('errors.atMost', { max: options.max });
      return true;
    };
  }

  /** A finite number; blank means the default. */
  function finite(v, _opt) {
    return isBlank(v) || isFinite(Number(v)) || text('errors.notANumber');
  }

  /** One of `choices` (a flow edited by hand may hold anything). */
  function oneOf(choices) {
    return function (v, _opt) {
      return choices.indexOf(v) !== -1 || text('errors.oneOf', { choices: choices.join(', ') });
    };
  }

  /**
   * The value of a TypedInput whose type is in the property `typeField`, checked by Node-RED's own
   * validator for that type. `types` are the types the field offers; `absent` is the type for which an
   * absent value is valid (the runtime's default property, e.g. msg.payload).
   */
  function typed(typeField, types, fallbackType, absent) {
    return function (v, opt) {
      var type = current(this, typeField, fallbackType);
      if (types.indexOf(type) === -1) return text('errors.type', { type: type });
      if (v === undefined && type === absent) return true;
      return RED.validators.typedInput({ type: type }).call(this, v, opt);
    };
  }

  /**
   * The key: a TypedInput of KEY_TYPES. A msg property or text must not be empty (an absent msg key
   * means msg.topic); `optional` (ttl-fetch) accepts an empty key of any type.
   */
  function key(optional) {
    return function (v, opt) {
      var type = current(this, 'keyType', 'msg');
      if (KEY_TYPES.indexOf(type) === -1) return text('errors.type', { type: type });
      if (v === undefined && type === 'msg') return true; // absent: the runtime uses msg.topic
      if (isBlank(v)) {
        if (optional) return true;
        if (type === 'msg' || type === 'str') return text('errors.keyEmpty');
      }
      return RED.validators.typedInput({ type: type }).call(this, v, opt);
    };
  }

  /** Turns #node-input-key into a TypedInput backed by #node-input-keyType. */
  function keyInput() {
    $('#node-input-key').typedInput({ default: 'msg', types: KEY_TYPES, typeField: '#node-input-keyType' });
  }

  /** Cuts a label part to LABEL_LENGTH characters. */
  function shorten(value) {
    return value.length > LABEL_LENGTH ? value.slice(0, LABEL_LENGTH - 1) + '\u2026' : value;
  }

  /** The key as a node label shows it: msg.topic, flow.x, the text itself, "expression" for JSONata, "?" if empty. */
  function keyLabel(node) {
    var type = node.keyType || 'msg';
    var value = node.key === undefined ? 'topic' : String(node.key);
    if (value.trim() === '') return '?';
    return shorten(type === 'str' ? value : type === 'jsonata' ? text('key.expression') : type + '.' + value);
  }

  /**
   * The Store field: the config select's empty choice (Node-RED shows "none" or "Add new cache
   * store...") is named for what it is, the default store, and a line under the field says which file
   * and which namespace that is. Node-RED rebuilds the options when a store is added or edited from the
   * dialog, so the empty choice is renamed again after each rebuild.
   */
  function storeField() {
    var select = $('#node-input-store');
    if (select.length === 0 || !select.is('select')) return;
    var rename = function () {
      select.find('option[value="_ADD_"]').text(text('store.default'));
    };
    rename();
    new MutationObserver(rename).observe(select[0], { childList: true });
    $('<div class="form-row flow-cache-store-hint">')
      .css({ margin: '-6px 0 12px 104px', 'font-size': '0.9em', color: 'var(--red-ui-secondary-text-color, #777)' })
      .html(text('store.hint'))
      .insertAfter(select.closest('.form-row'));
  }

  /** Selects `fallback` in a <select> whose value is none of its options (a property missing from an imported flow). */
  function selectOr(id, fallback) {
    var select = $(id);
    var value = select.val();
    var known = select.find('option').filter(function () {
      return this.value === value;
    });
    if (isBlank(value) || known.length === 0) select.val(fallback);
  }

  /** Fills a <select> with the time units and selects the node's unit (`fallback` if it has none or an unknown one). */
  function unitSelect(node, property, fallback) {
    var select = $('#node-input-' + property).empty();
    UNITS.forEach(function (unit) {
      $('<option>')
        .val(unit)
        .text(text('units.' + unit))
        .appendTo(select);
    });
    select.val(UNITS.indexOf(node[property]) === -1 ? fallback : node[property]);
  }

  /** A unit's short form for node labels ("min"); an unknown unit gives `fallback`'s. */
  function shortUnit(unit, fallback) {
    return text('short.' + (UNITS.indexOf(unit) === -1 ? fallback : unit));
  }

  /*
   * Each flow node's RED.nodes.registerType call writes its definition out as an object literal
   * (category, colour, icon, inputs, outputs, defaults, credentials), where Node-RED's Flow Library
   * reads it; these fill in the parts every flow node shares.
   */

  /** The palette label of a flow node: its catalogue's label.palette, in the editor's language. */
  function paletteLabel(type) {
    return function () {
      return nodeText(type, 'label.palette');
    };
  }

  /** A node with a name of its own shows it in italics. */
  function labelStyle() {
    return this.name ? 'node_label_italic' : '';
  }

  /** The Key and Store fields of a flow node's dialog: called first in its oneditprepare. */
  function prepareFlowNode() {
    keyInput();
    storeField();
  }

  /**
   * Layout of the cache-store dialog, the one with the longest labels and choices ("Vorgabe-TTL",
   * "Verdrängung", "Redis server, shared by several Node-RED"). Node-RED gives a label 100 px, which
   * holds them in Arial's widths but not in DejaVu Sans (what Linux draws Arial with where Liberation
   * Sans is not installed), and its fields 70 % of the form. Here: labels of 130 px, the text fields and
   * selects take the rest of the row, the number fields are wide enough for their placeholders ("0 =
   * behalten"). The dialog is found by its eviction field, which no other dialog has.
   */
  var DIALOG_STYLE = [
    'form:has(#node-config-input-evictionPolicy) .form-row > label { width: 130px; }',
    'form:has(#node-config-input-evictionPolicy) .form-row > input[type="text"], ' +
      'form:has(#node-config-input-evictionPolicy) .form-row > input[type="password"], ' +
      'form:has(#node-config-input-evictionPolicy) .form-row > select { width: calc(100% - 134px) !important; }',
    'form:has(#node-config-input-evictionPolicy) .form-row > input#node-config-input-defaultTtl, ' +
      'form:has(#node-config-input-evictionPolicy) .form-row > input#node-config-input-sizeLimitMb, ' +
      'form:has(#node-config-input-evictionPolicy) .form-row > input#node-config-input-flushInterval, ' +
      'form:has(#node-config-input-evictionPolicy) .form-row > input#node-config-input-redisDb { width: 120px !important; }',
  ].join('\n');

  function addStyle() {
    if (document.getElementById('flow-cache-editor-style')) return;
    var style = document.createElement('style');
    style.id = 'flow-cache-editor-style';
    style.textContent = DIALOG_STYLE;
    document.head.appendChild(style);
  }

  addStyle();

  window.FlowCacheEditor = {
    MODULE: MODULE,
    KEY_TYPES: KEY_TYPES,
    UNITS: UNITS,
    text: text,
    nodeText: nodeText,
    escapeHtml: escapeHtml,
    isBlank: isBlank,
    current: current,
    orDefault: orDefault,
    number: number,
    finite: finite,
    oneOf: oneOf,
    typed: typed,
    key: key,
    keyInput: keyInput,
    keyLabel: keyLabel,
    shorten: shorten,
    storeField: storeField,
    selectOr: selectOr,
    unitSelect: unitSelect,
    shortUnit: shortUnit,
    paletteLabel: paletteLabel,
    labelStyle: labelStyle,
    prepareFlowNode: prepareFlowNode,
  };
})();
