// Package graph holds the calendar sources: Microsoft Graph, EWS for
// on-premises Exchange, and ICS feeds. Only this package imports the Graph
// SDK. The sources arrive with the calendar issues.
package graph
