import{a}from"./chunk-X6YHEMIY.js";import"./chunk-WOT6VMZA.js";export{a as BrowserPerformanceMeasurement};
