//! Which symbols get their own `symbol` label. Symbols come from untrusted payloads and every
//! label value is a time series, so the set is capped: reserved symbols (the configured
//! pairs) take their slots before any message arrives, later ones are admitted first come up
//! to the cap, and everything else shares `other`. This is the only per-symbol state the
//! consumer keeps for its lifetime.

use std::collections::HashMap;
use std::hash::RandomState;

use events::Symbol;

/// A symbol's label slot: an index into per-symbol arrays, or `None` for `other`.
pub type Slot = Option<u32>;

/// The label budget and the symbols admitted so far.
#[derive(Debug, Clone)]
pub struct SymbolLabels {
    cap: usize,
    /// Randomly keyed (SipHash): publishers choose the keys and could otherwise craft
    /// collisions that turn every look-up into a scan.
    slots: HashMap<Symbol, u32, RandomState>,
    names: Vec<Symbol>,
}

impl SymbolLabels {
    /// A budget of `cap` symbols, of which `reserved` are admitted now. When there are more
    /// reserved symbols than `cap`, all of them are admitted and nothing else is.
    pub fn new(cap: usize, reserved: &[Symbol]) -> SymbolLabels {
        let mut labels = SymbolLabels {
            cap: cap.max(reserved.len()),
            slots: HashMap::with_capacity_and_hasher(cap.min(4096), RandomState::new()),
            names: Vec::new(),
        };
        for &s in reserved {
            labels.slot(s);
        }
        labels
    }

    /// The slot of `symbol`, admitting it while the budget lasts.
    pub fn slot(&mut self, symbol: Symbol) -> Slot {
        if let Some(&slot) = self.slots.get(&symbol) {
            return Some(slot);
        }
        if self.names.len() >= self.cap {
            return None;
        }
        let slot = u32::try_from(self.names.len()).ok()?;
        self.slots.insert(symbol, slot);
        self.names.push(symbol);
        Some(slot)
    }

    /// The symbol of an admitted slot.
    pub fn name(&self, slot: u32) -> Option<Symbol> {
        self.names.get(slot as usize).copied()
    }

    /// Symbols admitted so far.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether no symbol has been admitted.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(s: &str) -> Symbol {
        Symbol::parse(s).expect("valid")
    }

    #[test]
    fn first_come_up_to_the_cap_then_other() {
        let mut labels = SymbolLabels::new(2, &[]);
        assert_eq!(labels.slot(sym("A")), Some(0));
        assert_eq!(labels.slot(sym("B")), Some(1));
        assert_eq!(labels.slot(sym("C")), None);
        assert_eq!(
            labels.slot(sym("A")),
            Some(0),
            "admitted symbols keep their slot"
        );
        assert_eq!(labels.name(1), Some(sym("B")));
    }

    #[test]
    fn reserved_symbols_survive_a_junk_storm() {
        let mut labels = SymbolLabels::new(3, &[sym("BTCUSDT"), sym("ETHUSDT")]);
        for i in 0..500 {
            labels.slot(sym(&format!("JUNK{i}")));
        }
        assert_eq!(labels.len(), 3);
        assert_eq!(labels.slot(sym("BTCUSDT")), Some(0));
        assert_eq!(labels.slot(sym("ETHUSDT")), Some(1));
        assert_eq!(labels.slot(sym("JUNK1")), None);
    }

    #[test]
    fn more_reserved_than_the_cap_are_all_kept() {
        let reserved: Vec<Symbol> = ["A", "B", "C"].map(sym).to_vec();
        let mut labels = SymbolLabels::new(1, &reserved);
        assert_eq!(labels.slot(sym("C")), Some(2));
        assert_eq!(labels.slot(sym("D")), None);
    }
}
