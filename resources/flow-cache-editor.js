/* Editor helpers shared by every node of node-red-contrib-flow-cache (loaded before the nodes' editor scripts). */
(function () {
  'use strict';
  var KEY_TYPES = ['msg', 'str', 'flow', 'global', 'env', 'jsonata'];

  function isBlank(v) {
    return v === undefined || v === null || String(v).trim() === '';
  }

  /** A `validate` function: a number (or numeric text) >= min; `allowBlank` accepts '' (meaning "default"). */
  function number(min, options) {
    options = options || {};
    // Two parameters: Node-RED treats a returned text as an error only for a validator of arity 2.
    return function (v, _opt) {
      if (isBlank(v)) return options.allowBlank ? true : 'required';
      var n = Number(v);
      if (!isFinite(n)) return 'not a number';
      if (options.exclusive ? n <= min : n < min) return 'must be ' + (options.exclusive ? '> ' : '>= ') + min;
      if (options.integer && Math.floor(n) !== n) return 'must be a whole number';
      return true;
    };
  }

  /** A `validate` function for a value that must be one of `choices`. */
  function oneOf(choices) {
    // Two parameters: Node-RED treats a returned text as an error only for a validator of arity 2.
    return function (v, _opt) {
      return choices.indexOf(v) !== -1 || 'must be one of ' + choices.join(', ');
    };
  }

  /** A `validate` function for the key: a non-empty msg property or string (other types are checked at run time). */
  function key(optional) {
    // Two parameters: Node-RED treats a returned text as an error only for a validator of arity 2.
    return function (v, _opt) {
      var type = $('#node-input-keyType').length ? $('#node-input-keyType').val() : this.keyType;
      type = type || 'msg';
      if (KEY_TYPES.indexOf(type) === -1) return 'unknown key type';
      if (optional) return true;
      if (v === undefined && type === 'msg') return true; // absent: the runtime uses msg.topic
      if ((type === 'msg' || type === 'str') && isBlank(v)) return 'the key is empty';
      return true;
    };
  }

  /** Turns #node-input-key into a TypedInput backed by #node-input-keyType. */
  function keyInput() {
    $('#node-input-key').typedInput({ default: 'msg', types: KEY_TYPES, typeField: '#node-input-keyType' });
  }

  window.FlowCacheEditor = {
    KEY_TYPES: KEY_TYPES,
    number: number,
    oneOf: oneOf,
    key: key,
    keyInput: keyInput,
    /** The defaults every node shares: name, optional store, key. */
    commonDefaults: function (keyOptional) {
      return {
        name: { value: '' },
        store: { value: '', type: 'cache-store', required: false },
        key: { value: keyOptional ? '' : 'topic', validate: key(keyOptional) },
        keyType: { value: 'msg' },
      };
    },
    color: '#9FD4C4',
    category: 'flow cache',
  };
})();
